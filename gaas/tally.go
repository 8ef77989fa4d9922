package gaas

// Tally is what the service holds at one moment, for monitoring: how many
// jobs are in each status, how many credits the jobs that are not final
// reserve (their costs, charged at submission and not yet settled), and how
// many accounts there are of each kind.
type Tally struct {
	Jobs     map[JobStatus]int64
	Reserved map[JobStatus]Credits // only statuses that are not final
	Accounts map[AccountKind]int64
}

// AccountKind is a role and whether the account is disabled.
type AccountKind struct {
	Role     Role
	Disabled bool
}
