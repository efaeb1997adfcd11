package telemetry

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"
)

// Check is one readiness condition; a nil error means ready.
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// Endpoints picks what a Server serves.
type Endpoints struct {
	// Metrics, when non-nil, is served at /metrics, next to /healthz (the
	// process is alive) and /readyz (every one of Checks passes).
	Metrics http.Handler
	Checks  []Check
	// Profiling serves Go's runtime profiles under /debug/pprof/. They are
	// unauthenticated and /debug/pprof/cmdline shows the command line: keep
	// such a server on loopback or a private network.
	Profiling bool
}

// Server serves Endpoints over HTTP on one listener.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Listen opens addr and prepares the endpoints; Serve runs them.
func Listen(addr string, e Endpoints) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	if e.Metrics != nil {
		mux.Handle("/metrics", e.Metrics)
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte("ok\n"))
		})
		mux.HandleFunc("/readyz", readyz(e.Checks))
	}
	if e.Profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return &Server{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}, nil
}

// readyz answers 200 when every check passes, 503 naming those that fail.
func readyz(checks []Check) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		var failed []string
		for _, c := range checks {
			if err := c.Fn(ctx); err != nil {
				failed = append(failed, c.Name+": "+err.Error())
			}
		}
		if len(failed) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready\n" + strings.Join(failed, "\n") + "\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	}
}

// Close releases the listener of a Server that will not Serve.
func (s *Server) Close() error { return s.ln.Close() }

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve runs until ctx ends.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = s.srv.Shutdown(sctx)
	})
	defer stop()
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
