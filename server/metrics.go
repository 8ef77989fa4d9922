package server

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gaas-io/gaas/gaas"
)

// Metrics counts what the server and the store do, for Prometheus. Give it
// to NewServer in Config.Metrics, and to store.Open as its Observer (it
// implements store.Observer), so that submissions, refusals, changes of
// status and group-commit batches are counted where they are committed. A
// nil *Metrics counts nothing.
type Metrics struct {
	gatherer prometheus.Gatherer

	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	submitted     prometheus.Counter
	moves         *prometheus.CounterVec
	charged       prometheus.Counter
	refunded      prometheus.Counter
	quotaExceeded prometheus.Counter
	loginFailures prometheus.Counter
	loginsLimited *prometheus.CounterVec
	batchSize     prometheus.Histogram
}

// NewMetrics makes the server's metrics and registers them with reg.
func NewMetrics(reg *prometheus.Registry) *Metrics {
	m := &Metrics{
		gatherer: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gaas_http_requests_total",
			Help: "HTTP requests answered, by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gaas_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern and status code.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "code"}),
		submitted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gaas_jobs_submitted_total",
			Help: "Jobs submitted and charged (retries answered with an earlier job are not counted).",
		}),
		moves: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gaas_job_transitions_total",
			Help: "Changes of job status, by the status entered.",
		}, []string{"status"}),
		charged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gaas_hours_charged_total",
			Help: "GPU hours charged at submission.",
		}),
		refunded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gaas_hours_refunded_total",
			Help: "GPU hours refunded by rejections, cancellations and jobs that finished early.",
		}),
		quotaExceeded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gaas_quota_exceeded_total",
			Help: "Submissions refused for lack of hours.",
		}),
		loginFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gaas_login_failures_total",
			Help: "Logins refused for a wrong username or password.",
		}),
		loginsLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gaas_logins_rate_limited_total",
			Help: "Logins refused before hashing for too many attempts, by what was limited: username or address.",
		}, []string{"by"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "gaas_store_batch_size",
			Help:    "Submissions applied per group-commit transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 9), // 1 to 256
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.submitted, m.moves, m.charged, m.refunded,
		m.quotaExceeded, m.loginFailures, m.loginsLimited, m.batchSize)
	// Every label value known in advance starts at zero, so that rates and
	// alerts see it before its first event.
	for _, s := range gaas.Statuses() {
		m.moves.WithLabelValues(string(s))
	}
	m.loginsLimited.WithLabelValues("username")
	m.loginsLimited.WithLabelValues("address")
	return m
}

// Handler serves the registry's metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{})
}

// request counts one answered request.
func (m *Metrics) request(route string, code int, seconds float64) {
	if m == nil {
		return
	}
	c := strconv.Itoa(code)
	m.requests.WithLabelValues(route, c).Inc()
	m.duration.WithLabelValues(route, c).Observe(seconds)
}

func (m *Metrics) loginFailed() {
	if m != nil {
		m.loginFailures.Inc()
	}
}

func (m *Metrics) loginLimited(by string) {
	if m != nil {
		m.loginsLimited.WithLabelValues(by).Inc()
	}
}

// JobSubmitted implements store.Observer.
func (m *Metrics) JobSubmitted(j gaas.Job) {
	if m != nil {
		m.submitted.Inc()
		m.charged.Add(hoursFloat(j.EstimatedHours))
	}
}

// QuotaExceeded implements store.Observer.
func (m *Metrics) QuotaExceeded(gaas.Hours) {
	if m != nil {
		m.quotaExceeded.Inc()
	}
}

// JobMoved implements store.Observer.
func (m *Metrics) JobMoved(_, to gaas.JobStatus, refund gaas.Hours) {
	if m != nil {
		m.moves.WithLabelValues(string(to)).Inc()
		m.refunded.Add(hoursFloat(refund))
	}
}

// BatchCommitted implements store.Observer.
func (m *Metrics) BatchCommitted(n int) {
	if m != nil {
		m.batchSize.Observe(float64(n))
	}
}

// hoursFloat is h in hours, for a counter.
func hoursFloat(h gaas.Hours) float64 { return float64(h) / float64(gaas.Hour) }
