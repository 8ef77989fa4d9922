package gaas

import "strings"

// Price is what a job was submitted with that its charges follow: its
// estimate, its GPUs and the rate of its type then. A job keeps its Price
// whatever later happens to the catalogue.
type Price struct {
	Estimate Hours
	GPUs     int
	Rate     Rate
}

// Of is the Cost of hours of the job's GPUs at its rate; it is defined for
// every hours from zero to the estimate of a price that was charged.
func (p Price) Of(hours Hours) (Credits, bool) { return Cost(hours, p.GPUs, p.Rate) }

// Settlement is where a job's credits stand: what it is charged, and what
// has come back of the cost of its estimate, charged at submission.
// Charged + Refunded is that cost.
type Settlement struct {
	Charged  Credits
	Refunded Credits
}

// SettlementOf is the settlement of a job in status, with its actual hours
// when they were given: the cost of the whole estimate stays charged
// until the job is final; REJECTED and CANCELLED give it all back;
// COMPLETED and FAILED with actual hours, and CANCELLED with the hours a
// RUNNING job ran, charge their Cost and give back the rest. It is the one rule of refunds: Settle and Check both read it.
// A state that no sequence of moves reaches (actual hours on a status that
// takes none, negative, or above the estimate; a price that cannot be
// charged) is ErrInvalid.
func SettlementOf(p Price, status JobStatus, actual *Hours) (Settlement, error) {
	if err := ValidateMove(status, actual); err != nil {
		return Settlement{}, err
	}
	cost, ok := p.Of(p.Estimate)
	if !ok {
		return Settlement{}, Invalid("estimated_hours", "%s hours of %d GPUs at rate %s cost more than %s credits", p.Estimate, p.GPUs, p.Rate, MaxCredits)
	}
	switch {
	case actual != nil:
		if *actual > p.Estimate {
			return Settlement{}, Invalid("actual_hours", "must be at most the estimate of %s hours", p.Estimate)
		}
		used, _ := p.Of(*actual) // at most cost, which is in range
		return Settlement{Charged: used, Refunded: cost - used}, nil
	case status.RefundsAll():
		return Settlement{Charged: 0, Refunded: cost}, nil
	}
	return Settlement{Charged: cost}, nil
}

// Move is a request to move a job from its status to another.
type Move struct {
	Price
	From, To JobStatus
	Actual   *Hours // the hours the job took, for To that TakesActualHours
}

// Settle decides a move and returns the credits it refunds: what the
// settlement of the new status gives back beyond that of the old one.
// Moving to the status the job has refunds nothing, so a retry of a move
// already made refunds nothing twice. Errors: a *ValidationError
// (ErrInvalid) for an unknown status, or actual hours that are negative,
// above the estimate or given for a status that takes none; a
// *TransitionError (ErrInvalidTransition) for a move the lifecycle does
// not allow, and for cancelling a RUNNING job without its actual hours.
func Settle(m Move) (refund Credits, err error) {
	if err := ValidateMove(m.To, m.Actual); err != nil {
		return 0, err
	}
	if m.From == m.To {
		return 0, nil
	}
	if !m.From.CanMove(m.To) {
		return 0, &TransitionError{From: m.From, To: m.To}
	}
	if m.To == StatusCancelled {
		switch {
		case m.From == StatusRunning && m.Actual == nil:
			return 0, &TransitionError{From: m.From, To: m.To, Why: "a RUNNING job is cancelled with actual_hours, the hours it ran"}
		case m.From != StatusRunning && m.Actual != nil:
			return 0, Invalid("actual_hours", "may be given to cancel only a RUNNING job: a %s job has not run", m.From)
		}
	}
	// A status that can move is not final, so it has refunded nothing yet
	// and needs no actual hours.
	before, err := SettlementOf(m.Price, m.From, nil)
	if err != nil {
		return 0, err
	}
	after, err := SettlementOf(m.Price, m.To, m.Actual)
	if err != nil {
		return 0, err
	}
	return after.Refunded - before.Refunded, nil
}

// ValidateMove checks what can be checked of a move before the job is
// read: to is a status, and actual hours, when given, are not negative and
// go with a status that takes them.
func ValidateMove(to JobStatus, actual *Hours) error {
	if !to.Valid() {
		return Invalid("status", "must be one of %s", StatusList())
	}
	if actual == nil {
		return nil
	}
	if !to.TakesActualHours() {
		return Invalid("actual_hours", "may be given only with status %s, %s or %s", StatusCompleted, StatusFailed, StatusCancelled)
	}
	if *actual < 0 {
		return Invalid("actual_hours", "must not be negative")
	}
	return nil
}

// StatusList is every status, in lifecycle order, separated by commas.
func StatusList() string {
	names := make([]string, len(statuses))
	for i, s := range statuses {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}
