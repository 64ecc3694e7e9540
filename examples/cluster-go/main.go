// Command cluster-go is an HTTP server that answers with its pid. Under kin's
// cluster mode it serves on the socket kin bound and handed over (package
// cluster: LISTEN_FDS, LISTEN_PID), so that every instance shares one port;
// alone it binds :$PORT (default 8080) as usual.
package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/kinproc/kin/cluster"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	ln, err := cluster.Listen("tcp", ":"+port)
	if err != nil {
		log.Fatal(err)
	}
	pid := strconv.Itoa(os.Getpid())
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, pid)
	})}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		log.Fatal(err)
	case <-ctx.Done():
	}
	// Stop accepting (the socket stays open in kin and the other instances)
	// and finish the requests in flight. Note that Shutdown also closes idle
	// keep-alive connections at once, which races with a client reusing one.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Fatal(err)
	}
}
