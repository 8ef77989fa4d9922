package gaas

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrNotFound is returned when the thing asked for does not exist, or
	// exists but is not visible to the caller (another user's job), so that
	// existence is not leaked.
	ErrNotFound = errors.New("gaas: not found")

	// ErrConflict is returned when a request contradicts what is stored: a
	// username that is taken, an idempotency key reused for a different
	// request, or a change that would leave no admin.
	ErrConflict = errors.New("gaas: conflict")

	// ErrInvalid is returned for input that breaks a rule of the domain. The
	// error is a *ValidationError that names the fields.
	ErrInvalid = errors.New("gaas: invalid input")

	// ErrUnauthorized is returned when the caller cannot be identified: wrong
	// credentials, a token that does not verify, or a caller that no longer
	// exists.
	ErrUnauthorized = errors.New("gaas: unauthorized")

	// ErrForbidden is returned when the caller is known but their current
	// role does not allow the operation.
	ErrForbidden = errors.New("gaas: forbidden")

	// ErrQuotaExceeded is returned when a charge or a take-back asks for more
	// hours than the balance holds. The error is a *QuotaError with the
	// amounts. Nothing is written.
	ErrQuotaExceeded = errors.New("gaas: quota exceeded")

	// ErrInvalidTransition is returned when a job is asked to move to a
	// status that the transition table does not allow from its current one.
	ErrInvalidTransition = errors.New("gaas: invalid status transition")

	// ErrUnavailable is returned when the store cannot be reached or cannot
	// write just now (the database is down, read-only or full). Nothing was
	// changed; the same request may succeed later.
	ErrUnavailable = errors.New("gaas: unavailable")
)

// QuotaError says how many credits were asked for and how many were left
// for it: for a job, what the allocations that pay for its GPU type hold.
// It matches ErrQuotaExceeded with errors.Is.
type QuotaError struct {
	Asked     Credits
	Remaining Credits
	// GPUType is the GPU type the job asked for; empty when the
	// refusal concerns no job (taking back more than a balance holds).
	GPUType string
}

func (e *QuotaError) Error() string {
	if e.GPUType != "" {
		return fmt.Sprintf("%s: asked for %s credits, %s left for GPU type %s", ErrQuotaExceeded, e.Asked, e.Remaining, e.GPUType)
	}
	return fmt.Sprintf("%s: asked for %s credits, %s left", ErrQuotaExceeded, e.Asked, e.Remaining)
}

// Is reports whether target is ErrQuotaExceeded.
func (e *QuotaError) Is(target error) bool { return target == ErrQuotaExceeded }

// LimitError says which bound of a project stopped a job: a member's
// limit, or the cap of the project or one of its ancestors, and how much
// was left there. It matches ErrQuotaExceeded with errors.Is.
type LimitError struct {
	// Bound is LimitMember or LimitCap.
	Bound     string
	Project   string // the project whose member limit or cap it is
	Asked     Credits
	Remaining Credits
}

// What a LimitError's Bound names.
const (
	LimitMember = "member limit"
	LimitCap    = "project cap"
)

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s: asked for %s credits, %s left under the %s of project %s", ErrQuotaExceeded, e.Asked, e.Remaining, e.Bound, e.Project)
}

// Is reports whether target is ErrQuotaExceeded.
func (e *LimitError) Is(target error) bool { return target == ErrQuotaExceeded }

// TransitionError says which move a job was refused. It matches
// ErrInvalidTransition with errors.Is.
type TransitionError struct {
	From, To JobStatus
	// Why says why a move the lifecycle allows was refused this time; empty
	// for a move it does not allow.
	Why string
}

func (e *TransitionError) Error() string {
	if e.Why != "" {
		return fmt.Sprintf("%s: %s cannot move to %s: %s", ErrInvalidTransition, e.From, e.To, e.Why)
	}
	allowed := e.From.Next()
	if len(allowed) == 0 {
		return fmt.Sprintf("%s: %s is final, cannot move to %s", ErrInvalidTransition, e.From, e.To)
	}
	names := make([]string, len(allowed))
	for i, s := range allowed {
		names[i] = string(s)
	}
	return fmt.Sprintf("%s: %s cannot move to %s (allowed: %s)",
		ErrInvalidTransition, e.From, e.To, strings.Join(names, ", "))
}

// Is reports whether target is ErrInvalidTransition.
func (e *TransitionError) Is(target error) bool { return target == ErrInvalidTransition }

// FieldError is one rule that one input field broke. Field is the
// library's name for the input ("estimated_hours", "idempotency_key",
// "balance"); a transport that calls the input something else translates it.
type FieldError struct {
	Field   string
	Message string
}

// ValidationError lists every field of a request that broke a rule. It
// matches ErrInvalid with errors.Is.
type ValidationError struct {
	Fields []FieldError
}

// Invalid returns a *ValidationError for one field.
func Invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Fields: []FieldError{{Field: field, Message: fmt.Sprintf(format, args...)}}}
}

// Add records one more broken rule.
func (e *ValidationError) Add(field, format string, args ...any) {
	e.Fields = append(e.Fields, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Err returns e, or nil when no field broke a rule.
func (e *ValidationError) Err() error {
	if e == nil || len(e.Fields) == 0 {
		return nil
	}
	return e
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return ErrInvalid.Error() + ": " + strings.Join(parts, "; ")
}

// Is reports whether target is ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }
