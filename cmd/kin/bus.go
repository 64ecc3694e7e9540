package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/kinproc/kin/bus"
)

func init() {
	register(&command{name: "bus", summary: "publish and subscribe between processes (pub, sub)", run: runBus})
}

const busAbout = `Publish/subscribe between processes on NATS subjects ("orders.created"):
the same NATS as kin queue (the daemon's embedded server, or $KIN_NATS_URL).
Apps run by kin use it through their IPC channel with no library
({"kin":"publish",…}, {"kin":"subscribe",…}: docs/protocol.md §11).

  kin bus pub <subject> [JSON]     publish one message (no JSON: null)
  kin bus sub <pattern> [-n N]     print messages, one per line, until
                                   interrupted or N arrived; * matches one
                                   token, a last > the rest

Delivery is NATS core's: at most once, to the subscribers of the moment.
Subjects under kin. (queue jobs and events) can be watched but not published.`

func runBus(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		w := e.stdout
		if len(args) == 0 {
			w = e.stderr
		}
		fmt.Fprintf(w, "Usage: kin bus pub|sub …\n\n%s\n", busAbout)
		if len(args) == 0 {
			return &exitError{code: exitUsage}
		}
		return nil
	}
	switch args[0] {
	case "pub":
		return runBusPub(ctx, e, args[1:])
	case "sub":
		return runBusSub(ctx, e, args[1:])
	}
	return usageErrorf("bus: unknown command %q: want pub or sub", args[0])
}

func runBusPub(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "bus pub", "<subject> [JSON]", "Publish one message: JSON (one document; none means null) on subject.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	a := fs.Args()
	if len(a) < 1 || len(a) > 2 {
		return usageErrorf("bus pub: want a subject and a JSON document: kin bus pub orders.created '{\"id\":7}'")
	}
	if err := bus.CheckSubject(a[0]); err != nil {
		return usageErrorf("bus pub: %v", strings.TrimPrefix(err.Error(), "bus: "))
	}
	var data json.RawMessage
	if len(a) == 2 {
		if !json.Valid([]byte(a[1])) {
			return usageErrorf("bus pub: %q is no JSON (quote strings: '\"text\"')", a[1])
		}
		data = json.RawMessage(a[1])
	}
	c, _, err := queueConnect(ctx, e, "bus pub")
	if err != nil {
		return err
	}
	defer c.Close()
	if err := bus.New(c.Conn()).Publish(a[0], data); err != nil {
		return &exitError{code: exitFailure, err: fmt.Errorf("bus pub: %v", err)}
	}
	// Publish hands the message to the connection: see it reach the server.
	if err := c.Conn().FlushTimeout(10 * time.Second); err != nil {
		return &exitError{code: exitFailure, err: fmt.Errorf("bus pub: %v", err)}
	}
	return nil
}

func runBusSub(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "bus sub", "<pattern> [-n N] [--json]", `Print the messages published on subjects matching pattern, one per line
("subject data", or a JSON object with --json), until interrupted or N have
arrived. "subscribed to …" goes to stderr once the subscription is in place.`)
	count := fs.IntP("count", "n", 0, "exit after N messages (0: never)")
	timeout := fs.Duration("timeout", 0, "exit with status 1 if no message arrived for this long (0: never)")
	asJSON := fs.Bool("json", false, `print {"subject":…,"data":…} per message`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErrorf("bus sub: want one subject pattern: kin bus sub 'orders.>'")
	}
	pattern := fs.Arg(0)
	if err := bus.CheckPattern(pattern); err != nil {
		return usageErrorf("bus sub: %v", strings.TrimPrefix(err.Error(), "bus: "))
	}
	if *count < 0 || *timeout < 0 {
		return usageErrorf("bus sub: negative -n or --timeout")
	}
	c, _, err := queueConnect(ctx, e, "bus sub")
	if err != nil {
		return err
	}
	defer c.Close()
	msgs := make(chan bus.Message, 1024)
	done := make(chan struct{})
	defer close(done)
	sub, err := bus.New(c.Conn()).Subscribe(pattern, func(m bus.Message) {
		select {
		case msgs <- m:
		case <-done:
		}
	})
	if err != nil {
		return &exitError{code: exitFailure, err: fmt.Errorf("bus sub: %v", err)}
	}
	defer sub.Unsubscribe()
	if err := c.Conn().FlushTimeout(10 * time.Second); err != nil {
		return &exitError{code: exitFailure, err: fmt.Errorf("bus sub: %v", err)}
	}
	fmt.Fprintf(e.stderr, "kin: subscribed to %s\n", pattern)
	w := bufio.NewWriter(e.stdout)
	defer w.Flush()
	var idle <-chan time.Time
	var timer *time.Timer
	if *timeout > 0 {
		timer = time.NewTimer(*timeout)
		defer timer.Stop()
		idle = timer.C
	}
	for n := 0; *count == 0 || n < *count; n++ {
		var m bus.Message
		select {
		case <-ctx.Done():
			return nil
		case <-idle:
			return &exitError{code: exitFailure, err: fmt.Errorf("bus sub: no message on %s for %v", pattern, *timeout)}
		case m = <-msgs:
		}
		if timer != nil {
			timer.Reset(*timeout)
		}
		if *asJSON {
			err = json.NewEncoder(w).Encode(struct {
				Subject string          `json:"subject"`
				Data    json.RawMessage `json:"data"`
			}{m.Subject, m.Data})
		} else {
			_, err = fmt.Fprintf(w, "%s %s\n", m.Subject, m.Data)
		}
		if err == nil {
			err = w.Flush()
		}
		if err != nil {
			return err
		}
	}
	if d := sub.Dropped(); d > 0 {
		return &exitError{code: exitFailure, err: fmt.Errorf("bus sub: %d messages dropped (this reader was too slow)", d)}
	}
	return nil
}
