// Package gaas is the domain of GPU time as a service: what a user, a job,
// an allocation, a GPU type and a ledger entry are, how a job moves
// through its lifecycle, what each text and amount may hold, and the
// services that hand out and account for GPU time.
//
// It holds no I/O. Amounts are exact integers of thousandths: a job's
// hours are [Hours] (milli-hours), and everything that pays for them is
// [Credits] (milli-credits), one credit being one GPU-hour at rate 1. A
// job's statuses and the moves between them are [Statuses] and
// [Transitions]; the services ([JobService], [Quota], [Catalogue],
// [Allocations], [Projects], [UserService], [Authenticator]) are interfaces,
// implemented on a database by package store and on passwords and tokens
// by package authn, and served over HTTP by package server.
//
// Hours become credits in one place. The catalogue lists the GPU types
// jobs may ask for ([GPUType]), each with a [Rate] in credits per GPU-hour
// and a limit of GPUs per job; while it is empty any type is accepted at
// [RateOne], and once it holds one a job must name an enabled type of it.
// A job is priced when it is submitted, and keeps that [Price] whatever
// the catalogue says later. [Cost] is hours × GPUs × rate, rounded up to
// the next milli-credit: the one rounding rule. A job is charged the Cost
// of its estimate and, when it finishes early, settled at the Cost of its
// actual hours; the refund is the difference, so a job pays at most one
// milli-credit above the exact price, once, and no rounding creates or
// loses credits. At rate 1 on one GPU the credits are the hours.
//
// Credits are held in allocations: a user's balance is what their active
// [Allocation]s hold. Each account has a default allocation, for every
// type and without end, which [Quota.Set] and [Quota.Grant] change; an
// admin may give others that pay only for some GPU types, start later or
// expire. A submission draws its cost by [PlanDraws] (narrowest scope
// first, then soonest to expire, then oldest), and a refund goes back by
// [Returns], to the allocations drawn from last first.
//
// A [Project] holds an account too, shared by its members: a job that
// names a project (or goes to the caller's default one) is charged to
// the project's allocations, within the member's limit and the cap of
// the project and of every project above it, all in one step; a refusal
// by one of them is a [*LimitError]. Who may do what in a project is the
// same table, read by [AllowProject] with the caller's [ProjectRole].
//
// The rules the implementations follow are here too, as data and pure
// functions: who may do what is one table, read by [Allow] for a
// [Principal] (a user, or the system under a name) taking an [Action];
// what a job is charged and given back is [Settle] for a move and
// [SettlementOf] for a job as it stands, which the store refunds by and
// its Check verifies against; where its credits come from and go back to
// is [PlanDraws] and [Returns].
//
// Every service method has one shape: the context, the caller's user id,
// and then a request struct that names everything else
// ([TransitionRequest], [GrantRequest], ...), so that two ids cannot be
// passed in each other's place and a call can grow a field without
// breaking its callers.
//
// Nor does it hold a wire format: no JSON methods or tags, no HTTP names.
// Package server decides how hours, credits and rates are written as
// JSON, and translates the library's names for the inputs
// ("idempotency_key", the balance of [Quota.Set], the delta of
// [Quota.Grant]) to the ones its clients send.
//
// Every failure a service reports matches one of the sentinel errors with
// errors.Is: [ErrNotFound], [ErrInvalid] (a [*ValidationError] names the
// fields, in the library's words), [ErrQuotaExceeded] (a [*QuotaError]
// or a [*LimitError] says what was asked and what is left), [ErrInvalidTransition],
// [ErrConflict], [ErrUnauthorized], [ErrForbidden] and [ErrUnavailable].
package gaas
