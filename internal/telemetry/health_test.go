package telemetry

import (
	"context"
	"errors"
	"net/http"
	"testing"
)

func TestHealthServer(t *testing.T) {
	notReady := errors.New("upstream unreachable")
	for _, tc := range []struct {
		name      string
		profiling bool
		check     error
		want      map[string]int
	}{
		{"defaults", false, nil, map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200, "/debug/pprof/": 404}},
		{"not ready", false, notReady, map[string]int{"/healthz": 200, "/readyz": 503}},
		{"profiling", true, nil, map[string]int{"/debug/pprof/": 200, "/debug/pprof/heap": 200}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("# none\n")) })
			check := Check{Name: "upstream", Fn: func(context.Context) error { return tc.check }}
			s, err := Listen("127.0.0.1:0", Endpoints{Metrics: metrics, Checks: []Check{check}, Profiling: tc.profiling})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Serve(ctx) }()
			defer func() { cancel(); <-done }()
			for path, want := range tc.want {
				resp, err := http.Get("http://" + s.Addr() + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != want {
					t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
				}
			}
		})
	}
}
