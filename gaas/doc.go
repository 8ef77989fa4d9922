// Package gaas is the domain of GPU hours as a service: what a user, a job
// and a ledger entry are, how a job moves through its lifecycle, what each
// text and amount may hold, and the services that hand out and account for
// GPU time.
//
// It holds no I/O. Hours are exact ([Hours] counts milli-hours); a job's
// statuses and the moves between them are [Statuses] and [Transitions];
// the services ([JobService], [Quota], [UserService], [Authenticator]) are
// interfaces, implemented on a database by package store and on passwords
// and tokens by package authn, and served over HTTP by package server.
//
// The rules the implementations follow are here too, as data and pure
// functions: who may do what is one table, read by [Allow] for a
// [Principal] (a user, or the system under a name) taking an [Action];
// what a job is charged and given back is [Settle] for a move and
// [SettlementOf] for a job as it stands, which the store refunds by and
// its Check verifies against.
//
// Every service method has one shape: the context, the caller's user id,
// and then a request struct that names everything else
// ([TransitionRequest], [GrantRequest], ...), so that two ids cannot be
// passed in each other's place and a call can grow a field without
// breaking its callers.
//
// Nor does it hold a wire format: no JSON methods or tags, no HTTP names.
// Package server decides how hours are written as JSON, and translates the
// library's names for the inputs ("idempotency_key", the balance of
// [Quota.Set], the delta of [Quota.Grant]) to the ones its clients send.
//
// Every failure a service reports matches one of the sentinel errors with
// errors.Is: [ErrNotFound], [ErrInvalid] (a [*ValidationError] names the
// fields, in the library's words), [ErrQuotaExceeded] (a [*QuotaError]
// says what was asked and what is left), [ErrInvalidTransition],
// [ErrConflict], [ErrUnauthorized], [ErrForbidden] and [ErrUnavailable].
package gaas
