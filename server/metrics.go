package server

import (
	"context"
	"net/http"
	"strconv"
	"time"

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
	registry *prometheus.Registry

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
		registry: reg,
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
			Name: "gaas_jobs_transitions_total",
			Help: "Changes of job status, by the status entered.",
		}, []string{"status"}),
		charged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gaas_jobs_charged_credits_total",
			Help: "Credits charged at submission: the costs of jobs (one credit is one GPU-hour at rate 1).",
		}),
		refunded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gaas_jobs_refunded_credits_total",
			Help: "Credits refunded by rejections, cancellations and jobs that finished early.",
		}),
		quotaExceeded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gaas_quota_exceeded_total",
			Help: "Submissions refused for lack of credits.",
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
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
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
		m.charged.Add(credits(j.Cost))
	}
}

// QuotaExceeded implements store.Observer.
func (m *Metrics) QuotaExceeded(gaas.Credits) {
	if m != nil {
		m.quotaExceeded.Inc()
	}
}

// JobMoved implements store.Observer.
func (m *Metrics) JobMoved(_, to gaas.JobStatus, refund gaas.Credits) {
	if m != nil {
		m.moves.WithLabelValues(string(to)).Inc()
		m.refunded.Add(credits(refund))
	}
}

// BatchCommitted implements store.Observer.
func (m *Metrics) BatchCommitted(n int) {
	if m != nil {
		m.batchSize.Observe(float64(n))
	}
}

// credits is c in credits: the unit of what jobs are charged, since a job
// of several GPUs, or on a GPU type of another rate, costs more or less
// than its GPU time. One division of an exact integer.
func credits(c gaas.Credits) float64 { return float64(c) / float64(gaas.Credit) }

// Tallier counts what the store holds; *store.DB is one.
type Tallier interface {
	Tally(ctx context.Context) (gaas.Tally, error)
}

// tallyTimeout bounds the queries of one scrape's state gauges.
const tallyTimeout = 2 * time.Second

// TallyState adds gauges of what the store holds (jobs by status, credits
// reserved by jobs that are not final, accounts by role), counted by t at each
// scrape. They are the database's, not the process's: every replica on one
// database reports the same values. gaas_store_up says whether the count
// answered within its timeout; when it did not, the gauges are left out of
// that scrape. Call it once.
func (m *Metrics) TallyState(t Tallier) {
	m.registry.MustRegister(stateCollector{t: t})
}

var (
	jobsDesc     = prometheus.NewDesc("gaas_jobs", "Jobs in the store, by status.", []string{"status"}, nil)
	reservedDesc = prometheus.NewDesc("gaas_jobs_reserved_credits",
		"Credits reserved by jobs that are not final (their costs, charged and not yet settled), by status.", []string{"status"}, nil)
	accountsDesc = prometheus.NewDesc("gaas_accounts", "Accounts, by role and whether they are disabled.", []string{"role", "disabled"}, nil)
	storeUpDesc  = prometheus.NewDesc("gaas_store_up", "1 if the store answered this scrape's counts of jobs and accounts in time, else 0.", nil, nil)
)

// stateCollector asks the store for its tally at each scrape. Counting at
// scrape time, rather than keeping gauges up to date from the store's
// events, keeps them right with several replicas on one database, after a
// restart and after an import, for the price of two aggregate queries per
// scrape.
type stateCollector struct{ t Tallier }

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{jobsDesc, reservedDesc, accountsDesc, storeUpDesc} {
		ch <- d
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), tallyTimeout)
	defer cancel()
	t, err := c.t.Tally(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(storeUpDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(storeUpDesc, prometheus.GaugeValue, 1)
	for _, s := range gaas.Statuses() {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(t.Jobs[s]), string(s))
		if !s.Final() {
			ch <- prometheus.MustNewConstMetric(reservedDesc, prometheus.GaugeValue, credits(t.Reserved[s]), string(s))
		}
	}
	for _, role := range []gaas.Role{gaas.RoleAdmin, gaas.RoleUser} {
		for _, disabled := range []bool{false, true} {
			n := t.Accounts[gaas.AccountKind{Role: role, Disabled: disabled}]
			ch <- prometheus.MustNewConstMetric(accountsDesc, prometheus.GaugeValue, float64(n), string(role), strconv.FormatBool(disabled))
		}
	}
}
