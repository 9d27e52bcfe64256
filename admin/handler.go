package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewHandler returns the admin endpoint's handler:
//
//	GET /healthz     200 "ok\n" while running and not blocked; 503 "blocked: <reason>\n"
//	                 when blocked (503 "<state>\n" for any other state); 500 if src fails.
//	                 A src that implements Healther answers it without a full Status.
//	GET /metrics     the Prometheus text format for gatherer (nil: an empty registry)
//	GET /api/status  200 with src's Status as JSON, blocked or not; 500 if src fails
//	GET /api/entries only when src also implements Lister: 200 with a JSON array of
//	                 Entry ([] when none); query state= (pending, uploading, uploaded,
//	                 failed; empty or absent for all) and limit= (a count; 0 or absent
//	                 for all); 400 for any other state or limit; 500 if src fails
//
// HEAD works wherever GET does; other methods get 405, other paths 404. The handler adds
// nothing to what src returns (no configuration, no environment), so what it shows is
// exactly what the daemon chose to put in the Status. src must not be nil. The handler
// is safe for concurrent use.
func NewHandler(src Source, gatherer prometheus.Gatherer) http.Handler {
	if src == nil {
		panic("admin.NewHandler: nil Source")
	}
	if gatherer == nil {
		gatherer = prometheus.NewRegistry()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		var st Status
		var err error
		if h, ok := src.(Healther); ok {
			st.State, st.BlockedReason = h.Health()
		} else {
			st, err = src.Status(r.Context())
		}
		if err != nil {
			plain(w, http.StatusInternalServerError, "status unavailable: "+err.Error())
			return
		}
		switch st.State {
		case StateRunning:
			plain(w, http.StatusOK, "ok")
		case StateBlocked:
			msg := "blocked"
			if st.BlockedReason != "" {
				msg += ": " + st.BlockedReason
			}
			plain(w, http.StatusServiceUnavailable, msg)
		default:
			// Starting, stopping, or a Source bug: not healthy, and say which.
			msg := st.State
			if msg == "" {
				msg = "not running"
			}
			plain(w, http.StatusServiceUnavailable, msg)
		}
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{
		// One broken collector should not hide every other metric.
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		st, err := src.Status(r.Context())
		if err != nil {
			plain(w, http.StatusInternalServerError, "status unavailable: "+err.Error())
			return
		}
		body, err := json.MarshalIndent(st, "", "  ")
		if err != nil {
			plain(w, http.StatusInternalServerError, "status unavailable: "+err.Error())
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		w.Write(append(body, '\n'))
	})
	if l, ok := src.(Lister); ok {
		mux.HandleFunc("GET /api/entries", func(w http.ResponseWriter, r *http.Request) {
			state, limit, err := entriesQuery(r.URL.Query())
			if err != nil {
				plain(w, http.StatusBadRequest, err.Error())
				return
			}
			entries, err := l.Entries(r.Context(), state, limit)
			if err != nil {
				plain(w, http.StatusInternalServerError, "entries unavailable: "+err.Error())
				return
			}
			if entries == nil {
				entries = []Entry{} // scripts get [], never null
			}
			h := w.Header()
			h.Set("Content-Type", "application/json")
			h.Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusOK)
			// Streamed: a ledger can hold many thousands of entries.
			json.NewEncoder(w).Encode(entries)
		})
	}
	return mux
}

// entriesQuery reads and checks /api/entries' state and limit parameters.
func entriesQuery(q url.Values) (state string, limit int, err error) {
	state = q.Get("state")
	if !ValidState(state) {
		return "", 0, fmt.Errorf("unknown state %q: use %s, or none for all", oneLine(state), strings.Join(States(), ", "))
	}
	if v := q.Get("limit"); v != "" {
		limit, err = strconv.Atoi(v)
		if err != nil || limit < 0 {
			return "", 0, fmt.Errorf("limit must be a whole number, 0 or more, got %q", oneLine(v))
		}
	}
	return state, limit, nil
}

// plain writes msg as one text line; line breaks inside msg (a multi-line error from
// the Source) are flattened so the response stays one line for probes and scripts.
func plain(w http.ResponseWriter, code int, msg string) {
	msg = oneLine(msg)
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write([]byte(msg + "\n"))
}
