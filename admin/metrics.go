package admin

import "github.com/prometheus/client_golang/prometheus"

// Label values of Metrics.Uploads (label "result").
const (
	ResultUploaded = "uploaded" // attached by this daemon
	ResultAdopted  = "adopted"  // an ambiguous attempt had in fact landed: recorded, not re-sent
	ResultFailed   = "failed"   // moved to _failed/
	ResultChanged  = "changed"  // the file changed while uploading: not counted, picked up again
)

// Label values of Metrics.Retries (label "class").
const (
	ClassTransient = "transient"
	ClassAmbiguous = "ambiguous"
)

// Metrics are crmdrop's Prometheus metrics, all named crmdrop_*. They are safe for
// concurrent use, and usable (as plain counters) even when not registered anywhere.
type Metrics struct {
	Discovered   prometheus.Counter     // crmdrop_files_discovered_total
	Uploads      *prometheus.CounterVec // crmdrop_uploads_total{result=Result*}
	Bytes        prometheus.Counter     // crmdrop_uploaded_bytes_total
	Duration     prometheus.Histogram   // crmdrop_upload_duration_seconds
	InFlight     prometheus.Gauge       // crmdrop_uploads_in_flight
	Retries      *prometheus.CounterVec // crmdrop_upload_retries_total{class=Class*}
	Throttled    prometheus.Counter     // crmdrop_throttled_total (HTTP 429 answers)
	Blocked      prometheus.Gauge       // crmdrop_blocked (1 while blocked, else 0)
	TokensMinted prometheus.Counter     // crmdrop_tokens_minted_total
}

// NewMetrics creates the metrics and registers them on reg, together with
// crmdrop_queue_depth, a gauge that calls queueDepth at every scrape (so queueDepth must
// be safe for concurrent use and quick; nil reports 0). A nil reg registers nothing.
// Every result and class label starts at 0, so rates work from the first scrape.
// It panics if reg already holds metrics of these names, as prometheus.MustRegister does:
// call it once per registry.
func NewMetrics(reg prometheus.Registerer, queueDepth func() float64) *Metrics {
	m := &Metrics{
		Discovered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "crmdrop_files_discovered_total",
			Help: "Files found ready in the inbox and handed to the queue.",
		}),
		Uploads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmdrop_uploads_total",
			Help: "Finished uploads by result: uploaded, adopted (found already attached after an ambiguous attempt), failed, changed (file changed during upload).",
		}, []string{"result"}),
		Bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "crmdrop_uploaded_bytes_total",
			Help: "Bytes of files attached.",
		}),
		Duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "crmdrop_upload_duration_seconds",
			Help: "Time from an upload's first attempt to its outcome, retries included.",
			// From a small file over loopback (50 ms) to 100 MiB, the API's limit, over a
			// slow uplink (10 min).
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "crmdrop_uploads_in_flight",
			Help: "Uploads under way.",
		}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmdrop_upload_retries_total",
			Help: "Upload attempts that will be retried, by class of error: transient, ambiguous.",
		}, []string{"class"}),
		Throttled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "crmdrop_throttled_total",
			Help: "HTTP 429 answers from Zoho.",
		}),
		Blocked: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "crmdrop_blocked",
			Help: "1 while uploads are paused by an error only an admin can fix, else 0.",
		}),
		TokensMinted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "crmdrop_tokens_minted_total",
			Help: "Access tokens obtained from the Zoho accounts server (10 in 10 minutes locks the refresh token out).",
		}),
	}
	for _, r := range []string{ResultUploaded, ResultAdopted, ResultFailed, ResultChanged} {
		m.Uploads.WithLabelValues(r)
	}
	for _, c := range []string{ClassTransient, ClassAmbiguous} {
		m.Retries.WithLabelValues(c)
	}
	if queueDepth == nil {
		queueDepth = func() float64 { return 0 }
	}
	queue := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "crmdrop_queue_depth",
		Help: "Files waiting for a worker.",
	}, queueDepth)
	if reg != nil {
		reg.MustRegister(m.Discovered, m.Uploads, m.Bytes, m.Duration, m.InFlight,
			m.Retries, m.Throttled, m.Blocked, m.TokensMinted, queue)
	}
	return m
}
