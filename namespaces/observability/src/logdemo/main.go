// logdemo: a small HTTP server whose source lives in this repo, so the dev loop has something
// of its own to build, push and roll out by digest on every save (README, "Images"). It logs
// one JSON line per request — lines for promtail to ship to Loki — and answers /healthz for
// its probes, and serves static/ under /static/. Only the standard library: it builds offline.
package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"
)

// greeting is what / answers; edit it and save while `just dev observability` runs.
const greeting = "hello from logdemo"

func main() {
	addr := ":8080"
	if port := os.Getenv("PORT"); port != "" {
		addr = ":" + port
	}
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	started := time.Now()

	mux := http.NewServeMux()
	// files under static/ are synced into the running container on save (no rebuild)
	static := os.Getenv("STATIC_DIR")
	if static == "" {
		static = "/srv/static"
	}
	mux.Handle("/static/", http.StripPrefix("/static/", http.FileServer(http.Dir(static))))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		log.Info("request", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
		fmt.Fprintf(w, "%s (up %s)\n", greeting, time.Since(started).Round(time.Second))
	})

	log.Info("listening", "addr", addr)
	if err := http.ListenAndServe(addr, mux); err != nil {
		log.Error("server stopped", "error", err)
		os.Exit(1)
	}
}
