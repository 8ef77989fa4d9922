package store

import "github.com/gaas-io/gaas/gaas"

// Observer hears of what the store has committed, for metrics. Its methods
// are called after the commit, on the goroutine that made it, so they must
// be quick, must not block and must not call the store.
type Observer interface {
	// JobSubmitted reports a new job, whose estimate was charged. A retry
	// answered with the job of an earlier request is not reported.
	JobSubmitted(j gaas.Job)
	// QuotaExceeded reports a submission refused for lack of credits: what it would have cost.
	QuotaExceeded(asked gaas.Credits)
	// JobMoved reports a job's change of status and the credits it refunded.
	// Asking for the status a job already has is not reported.
	JobMoved(from, to gaas.JobStatus, refund gaas.Credits)
	// BatchCommitted reports a group commit: n submissions applied in one
	// transaction.
	BatchCommitted(n int)
}

type nopObserver struct{}

func (nopObserver) JobSubmitted(gaas.Job)                                 {}
func (nopObserver) QuotaExceeded(gaas.Credits)                            {}
func (nopObserver) JobMoved(gaas.JobStatus, gaas.JobStatus, gaas.Credits) {}
func (nopObserver) BatchCommitted(int)                                    {}
