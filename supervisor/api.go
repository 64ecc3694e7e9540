package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"
)

// API request and response bodies of the control socket (see Handler).
type (
	// StartRequest is the body of POST /v1/start.
	StartRequest struct {
		Apps []AppSpec `json:"apps"`
		// Wait: answer once every instance is online (or failed).
		Wait bool `json:"wait,omitempty"`
		// UpdateEnv: existing apps take the new CallerEnv.
		UpdateEnv bool `json:"update_env,omitempty"`
		// NATS, when set, are the NATS settings of the config file the apps
		// come from; they are applied (HandlerOptions.NATS) before any app
		// starts, and an error starts nothing.
		NATS *NATSSettings `json:"nats,omitempty"`
	}
	// NATSRequest is the body of POST /v1/nats.
	NATSRequest struct {
		// Settings, when set, replace the daemon's NATS settings (see
		// HandlerOptions.NATS); nil keeps them.
		Settings *NATSSettings `json:"settings,omitempty"`
	}
	// TargetRequest is the body of stop, restart, reload, delete, flush.
	TargetRequest struct {
		// Target is an app name, an instance id, or "all".
		Target string `json:"target"`
	}
	// ScaleRequest is the body of POST /v1/scale.
	ScaleRequest struct {
		Name      string `json:"name"`
		Instances int    `json:"instances"`
	}
	// SignalRequest is the body of POST /v1/signal.
	SignalRequest struct {
		Target string `json:"target"`
		Signal string `json:"signal"`
	}
	// PingResponse answers GET /v1/ping.
	PingResponse struct {
		PID     int    `json:"pid"`
		Version string `json:"version"`
		Home    string `json:"home"`
		// StartedMS is the daemon's start time, in Unix milliseconds.
		StartedMS int64 `json:"started_ms"`
	}
	// ErrorResponse is the body of every non-2xx answer.
	ErrorResponse struct {
		Error string `json:"error"`
		// NotFound is true when the target matched nothing.
		NotFound bool `json:"not_found,omitempty"`
	}
)

// HandlerOptions configures Handler.
type HandlerOptions struct {
	// Version is reported by /v1/ping.
	Version string
	// Kill is called (after the answer is sent) by POST /v1/kill; nil makes
	// kill answer 501.
	Kill func()
	// NATS applies settings when they are not nil, makes sure the queue's
	// NATS server runs (starting the embedded one on first use), and says
	// how to reach it: POST /v1/nats, and the nats settings of a start.
	// Nil makes both answer 501.
	NATS func(ctx context.Context, settings *NATSSettings) (NATSInfo, error)
}

// Handler returns the control API: HTTP+JSON, served by the daemon on
// $KIN_HOME/kin.sock. Every call answers JSON; errors are an ErrorResponse
// with status 400 (bad request), 404 (no such target) or 500.
//
//	GET  /v1/ping                     PingResponse
//	GET  /v1/list                     []InstanceInfo
//	GET  /v1/describe?target=T        []AppInfo
//	POST /v1/start    StartRequest    []InstanceInfo
//	POST /v1/stop|restart|reload|delete  TargetRequest  []InstanceInfo
//	POST /v1/scale    ScaleRequest    []InstanceInfo
//	POST /v1/signal   SignalRequest   {}
//	POST /v1/save                     {"path": …}
//	POST /v1/resurrect                []InstanceInfo
//	POST /v1/flush    TargetRequest   {"files": [...]}
//	POST /v1/kill                     {} — stops every app, then the daemon
//	POST /v1/nats     NATSRequest     NATSInfo — starts the queue's NATS server if needed
func (s *Server) Handler(opts HandlerOptions) http.Handler {
	started := time.Now()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ping", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, PingResponse{PID: os.Getpid(), Version: opts.Version, Home: s.cfg.Home, StartedMS: started.UnixMilli()})
	})
	mux.HandleFunc("GET /v1/list", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, nonNil(s.List()))
	})
	mux.HandleFunc("GET /v1/describe", func(w http.ResponseWriter, r *http.Request) {
		out, err := s.Describe(r.URL.Query().Get("target"))
		reply(w, out, err)
	})
	mux.HandleFunc("POST /v1/start", func(w http.ResponseWriter, r *http.Request) {
		var req StartRequest
		if !readJSON(w, r, &req) {
			return
		}
		if req.NATS != nil {
			if opts.NATS == nil {
				writeJSON(w, http.StatusNotImplemented, ErrorResponse{Error: "this daemon has no queue: the nats settings cannot apply"})
				return
			}
			if err := req.NATS.Validate(); err != nil {
				writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: err.Error()})
				return
			}
			if _, err := opts.NATS(r.Context(), req.NATS); err != nil {
				reply(w, nil, err)
				return
			}
		}
		out, err := s.StartApps(r.Context(), req.Apps, StartOptions{Wait: req.Wait, UpdateEnv: req.UpdateEnv})
		reply(w, nonNil(out), err)
	})
	mux.HandleFunc("POST /v1/nats", func(w http.ResponseWriter, r *http.Request) {
		var req NATSRequest
		if !readJSON(w, r, &req) {
			return
		}
		if opts.NATS == nil {
			writeJSON(w, http.StatusNotImplemented, ErrorResponse{Error: "this daemon has no queue"})
			return
		}
		if req.Settings != nil {
			if err := req.Settings.Validate(); err != nil {
				writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: err.Error()})
				return
			}
		}
		info, err := opts.NATS(r.Context(), req.Settings)
		reply(w, info, err)
	})
	for name, op := range map[string]func(context.Context, string) error{
		"stop": s.Stop, "restart": s.Restart, "reload": s.Reload, "delete": s.Delete,
	} {
		mux.HandleFunc("POST /v1/"+name, func(w http.ResponseWriter, r *http.Request) {
			var req TargetRequest
			if !readJSON(w, r, &req) {
				return
			}
			err := op(r.Context(), req.Target)
			reply(w, nonNil(s.List()), err)
		})
	}
	mux.HandleFunc("POST /v1/scale", func(w http.ResponseWriter, r *http.Request) {
		var req ScaleRequest
		if !readJSON(w, r, &req) {
			return
		}
		err := s.Scale(r.Context(), req.Name, req.Instances)
		reply(w, nonNil(s.List()), err)
	})
	mux.HandleFunc("POST /v1/signal", func(w http.ResponseWriter, r *http.Request) {
		var req SignalRequest
		if !readJSON(w, r, &req) {
			return
		}
		reply(w, struct{}{}, s.Signal(r.Context(), req.Target, req.Signal))
	})
	mux.HandleFunc("POST /v1/save", func(w http.ResponseWriter, r *http.Request) {
		path, err := s.Save()
		reply(w, map[string]string{"path": path}, err)
	})
	mux.HandleFunc("POST /v1/resurrect", func(w http.ResponseWriter, r *http.Request) {
		out, err := s.Resurrect(r.Context())
		reply(w, nonNil(out), err)
	})
	mux.HandleFunc("POST /v1/flush", func(w http.ResponseWriter, r *http.Request) {
		var req TargetRequest
		if !readJSON(w, r, &req) {
			return
		}
		files, err := s.FlushLogs(req.Target)
		reply(w, map[string][]string{"files": files}, err)
	})
	mux.HandleFunc("POST /v1/kill", func(w http.ResponseWriter, r *http.Request) {
		if opts.Kill == nil {
			writeJSON(w, http.StatusNotImplemented, ErrorResponse{Error: "kill is not available"})
			return
		}
		writeJSON(w, http.StatusOK, struct{}{})
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		opts.Kill()
	})
	return mux
}

// LogFiles returns the log files of the target's instances (stdout and
// stderr of each).
func (s *Server) LogFiles(target string) ([]string, error) {
	apps, slots, err := s.resolve(target)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range apps {
		slots = append(slots, a.slots...)
	}
	var out []string
	for _, sl := range slots {
		for _, stream := range []string{"out", "err"} {
			if p := s.logPath(sl.app.spec, sl, stream); p != "" {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: fmt.Sprintf("bad request body: %v", err)})
		return false
	}
	return true
}

func reply(w http.ResponseWriter, v any, err error) {
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, v)
	case errors.Is(err, ErrNotFound):
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: err.Error(), NotFound: true})
	default:
		writeJSON(w, http.StatusInternalServerError, ErrorResponse{Error: err.Error()})
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
