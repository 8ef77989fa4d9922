package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gaas-io/gaas/authn"
	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

// errRefused wraps what the database refused an operator's subcommand
// (no such user, a name taken, an invalid value); gaasd then exits 1.
// Mistakes in the command line itself exit 2.
var errRefused = errors.New("refused")

// stdin is where -password-stdin reads; a variable so that tests can give one.
var stdin io.Reader = os.Stdin

const adminUsage = `Usage: gaasd user add NAME [-admin] [-password-stdin]
       gaasd user list [-json]
       gaasd user show NAME [-json]
       gaasd user passwd NAME [-password-stdin]
       gaasd user disable|enable NAME [-json]
       gaasd user role NAME admin|user [-json]
       gaasd quota grant NAME CREDITS -reason TEXT [-json]
       gaasd quota set NAME CREDITS -reason TEXT [-json]
       gaasd quota show NAME [-n COUNT] [-json]
       gaasd jobs list [-user NAME] [-status STATUS] [-json]
       gaasd gpu-types list [-retired] [-json]
       gaasd gpu-types add -name NAME -rate RATE [-description TEXT] [-max-gpus-per-job N] [-retired] [-json]
       gaasd gpu-types set NAME [-rate RATE] [-description TEXT] [-max-gpus-per-job N] [-enable|-retire] [-json]
       gaasd gpu-types apply FILE [-dry-run] [-json]
       gaasd allocations list -user NAME|ID [-ended] [-json]
       gaasd allocations add -user NAME|ID -amount CREDITS [-gpu-types A100,H100] [-starts TIME]
                             [-expires TIME | -for DURATION] [-reason TEXT] [-json]
       gaasd allocations end ID [-reason TEXT] [-json]
       gaasd allocations shorten ID -expires TIME [-reason TEXT] [-json]
       gaasd project add -name NAME [-parent PROJECT] [-cap CREDITS] [-description TEXT] [-managers-approve] [-json]
       gaasd project list [-json]
       gaasd project show PROJECT [-json]
       gaasd project member PROJECT -user NAME|ID -role manager|member [-limit CREDITS] [-gpu-types A100,H100] [-json]
       gaasd project member PROJECT -user NAME|ID -remove [-json]
       gaasd project grant PROJECT -amount CREDITS [-gpu-types A100,H100] [-starts TIME]
                           [-expires TIME | -for DURATION] [-reason TEXT] [-json]
       gaasd project set PROJECT [-cap CREDITS | -no-cap] [-description TEXT] [-managers-approve=true|false] [-json]
       gaasd project transfer PROJECT -to SUBPROJECT -amount CREDITS [-expires TIME] [-reason TEXT] [-json]
       gaasd schedules list [-user NAME|ID | -project PROJECT] [-json]
       gaasd schedules add -user NAME|ID | -project PROJECT -amount CREDITS -period PERIOD [-gpu-types A100,H100]
                           [-starts TIME] [-time-zone ZONE] [-rollover-cap CREDITS] [-grant-current] [-reason TEXT] [-json]
       gaasd schedules pause|resume|end ID [-json]
       gaasd executors add NAME [-json]
       gaasd executors list [-json]
       gaasd executors revoke NAME [-json]
       gaasd report [-from TIME] [-to TIME] [-period day|week|month] [-group-by user,project,gpu_type]
                    [-user NAME|ID] [-project PROJECT] [-format table|csv] [-json]

Works on the database that -db (or GAAS_DB) names directly, with no server
running or while one runs. Changes are made by the system principal
"cli:OSUSER", OSUSER being the operating-system user who runs the command;
the ledger names it as the actor of grants, sets and revocations. CREDITS
and RATE are decimal numbers of credits (a credit is one GPU-hour at rate
1), TIME is RFC 3339 (2026-12-01T00:00:00Z). quota grant and set change a
user's default allocation. PROJECT is a project's name or id; project
show lists its members and all its allocations, project grant gives it an
allocation, project transfer gives some of its credits to a sub-project as
a new allocation of it. schedules add gives a user or a project an
allocation every PERIOD (daily, weekly, monthly, quarterly, yearly) from
-starts in -time-zone, each starting and expiring with its period; what is
left at a period's end expires, or with -rollover-cap moves into the next
period's up to that many credits. gpu-types apply brings the catalogue to a
catalogue file, as gaasd -catalogue does at start-up: each type of the file
is created or updated, any other type is retired. executors add makes the
account of an executor on another machine (a gaas-runner) and prints its
token, shown this once; executors revoke ends the token at once. report
prints the usage report of GET /reports/usage over [-from, -to) (the last 30
days by default; a TIME there may also be a date, 2026-12-01, midnight
UTC): GPU-hours, credits charged and returned, and jobs by final status,
by period and group, with a total line, or as CSV. Output is aligned
columns, or JSON with -json. Exit status: 0 done, 1 refused (no such user
or project, name taken, invalid value, not enough credits), 2 a usage error.

A catalogue file:

  {"gpu_types": [
    {"name": "A100", "description": "NVIDIA A100 80GB", "rate": 2.5, "max_gpus_per_job": 8, "enabled": true},
    {"name": "T4", "rate": 0.5}
  ]}

name and rate are required; description defaults to "", max_gpus_per_job
to 0 (no limit of its own), enabled to true. Unknown fields, and a name
given twice in any letter case, are refused.

`

// adminCmd is one operator's subcommand, such as "user add".
type adminCmd struct {
	fs       *flag.FlagSet
	db       *string
	asJSON   *bool
	args     []string // the positional arguments
	stdout   io.Writer
	database *store.DB
	actor    gaas.Principal
}

// runAdmin is "gaasd user ...", "gaasd quota ...", "gaasd jobs ...", "gaasd gpu-types ...", "gaasd allocations ...",
// "gaasd project ...", "gaasd schedules ...", "gaasd executors ..." and "gaasd report".
func runAdmin(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	group := args[0]
	verbs := map[string][]string{
		"user": {"add", "list", "show", "passwd", "disable", "enable", "role"}, "quota": {"grant", "set", "show"}, "jobs": {"list"},
		"gpu-types": {"list", "add", "set", "apply"}, "allocations": {"list", "add", "end", "shorten"},
		"project":   {"add", "list", "show", "member", "grant", "set", "transfer"},
		"schedules": {"list", "add", "pause", "resume", "end"},
		"executors": {"add", "list", "revoke"},
	}[group]
	name, verb := "gaasd report", ""
	if group != "report" { // the one without verbs
		if len(args) < 2 {
			return fmt.Errorf("%s: name one of %s; gaasd help %s explains", group, strings.Join(verbs, ", "), group)
		}
		if args[1] == "-h" || args[1] == "-help" || args[1] == "--help" {
			fmt.Fprint(stdout, adminUsage)
			return flag.ErrHelp
		}
		verb = args[1]
		known := false
		for _, v := range verbs {
			known = known || v == verb
		}
		if !known {
			return fmt.Errorf("%s: no subcommand %q; there are %s", group, verb, strings.Join(verbs, ", "))
		}
		name = "gaasd " + group + " " + verb
	}
	c := &adminCmd{fs: flag.NewFlagSet(name, flag.ContinueOnError), stdout: stdout}
	c.db = c.fs.String("db", envOr(getenv, "GAAS_DB", "gaas.db"), "a SQLite `path` or a postgres:// URL (env GAAS_DB)")
	c.asJSON = c.fs.Bool("json", false, "print JSON instead of columns")
	c.fs.Usage = func() {
		fmt.Fprint(c.fs.Output(), adminUsage)
		c.fs.PrintDefaults()
	}
	switch group {
	case "gpu-types":
		return c.gpuTypes(ctx, verb, args[2:])
	case "allocations":
		return c.allocations(ctx, verb, args[2:])
	case "project":
		return c.projects(ctx, verb, args[2:])
	case "schedules":
		return c.schedules(ctx, verb, args[2:])
	case "executors":
		return c.executors(ctx, verb, args[2:])
	case "report":
		return c.report(ctx, args[1:])
	}
	switch group + " " + verb {
	case "user add":
		admin := c.fs.Bool("admin", false, "make the account an admin")
		fromStdin := c.fs.Bool("password-stdin", false, "read the password from the first line of stdin rather than a terminal prompt")
		return c.run(ctx, args[2:], 1, func() error { return c.userAdd(ctx, *admin, *fromStdin) })
	case "user list":
		return c.run(ctx, args[2:], 0, func() error { return c.userList(ctx) })
	case "user show":
		return c.run(ctx, args[2:], 1, func() error { return c.userShow(ctx) })
	case "user passwd":
		fromStdin := c.fs.Bool("password-stdin", false, "read the password from the first line of stdin rather than a terminal prompt")
		return c.run(ctx, args[2:], 1, func() error { return c.userPasswd(ctx, *fromStdin) })
	case "user disable", "user enable":
		return c.run(ctx, args[2:], 1, func() error { return c.userDisable(ctx, verb == "disable") })
	case "user role":
		return c.run(ctx, args[2:], 2, func() error { return c.userRole(ctx) })
	case "quota grant", "quota set":
		reason := c.fs.String("reason", "", "why, recorded in the ledger (required)")
		return c.run(ctx, args[2:], 2, func() error { return c.quotaChange(ctx, verb, *reason) })
	case "jobs list":
		owner := c.fs.String("user", "", "list only the jobs of this `user`")
		status := c.fs.String("status", "", "list only the jobs of this `status`")
		return c.run(ctx, args[2:], 0, func() error { return c.jobsList(ctx, *owner, gaas.JobStatus(*status)) })
	default: // quota show
		n := c.fs.Int("n", 10, "how many of the last ledger entries to show")
		return c.run(ctx, args[2:], 1, func() error { return c.quotaShow(ctx, *n) })
	}
}

// run parses flags, which may come before, between or after the want
// positional arguments, opens the database and runs do.
func (c *adminCmd) run(ctx context.Context, args []string, want int, do func() error) error {
	for {
		if err := parseFlags(c.fs, args, c.stdout); err != nil {
			return err
		}
		args = c.fs.Args()
		if len(args) == 0 {
			break
		}
		c.args = append(c.args, args[0])
		args = args[1:]
	}
	if len(c.args) != want {
		return fmt.Errorf("%s: takes %d arguments, not %d; %s -h explains", c.name(), want, len(c.args), c.fs.Name())
	}
	if _, err := os.Stat(*c.db); err != nil && !store.IsPostgres(*c.db) && c.fs.Name() != "gaasd user add" {
		return fmt.Errorf("%s: %w", c.name(), err) // only the first account creates the database
	}
	db, err := store.Open(ctx, *c.db, store.Options{})
	if err != nil {
		return fmt.Errorf("open database %s: %w", store.RedactDSN(*c.db), err)
	}
	defer db.Close()
	c.database, c.actor = db, gaas.System("cli:"+osUser())
	if err := do(); err != nil {
		if errors.Is(err, errUsage) {
			return fmt.Errorf("%s: %w", c.name(), err)
		}
		return fmt.Errorf("%s: %w: %w", c.name(), errRefused, err)
	}
	return nil
}

// name is the subcommand's, such as "user add".
func (c *adminCmd) name() string { return strings.TrimPrefix(c.fs.Name(), "gaasd ") }

// errUsage marks a mistake found after the database was opened that is
// still the command line's.
var errUsage = errors.New("usage")

// osUser is the operating-system user who runs gaasd.
func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "unknown"
}

// userJSON is a user as -json prints it.
type userJSON struct {
	ID        int64     `json:"id"`
	Username  string    `json:"username"`
	Role      gaas.Role `json:"role"`
	Balance   string    `json:"balance"`
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"created_at"`
}

func toUserJSON(u gaas.User) userJSON {
	return userJSON{u.ID, u.Username, u.Role, u.Balance.String(), u.Disabled, u.CreatedAt}
}

// userByName finds the account of name in any letter case.
func (c *adminCmd) userByName(ctx context.Context, name string) (gaas.User, error) {
	page, err := c.database.As(c.actor).Users(ctx, gaas.UserFilter{Username: name})
	if err != nil {
		return gaas.User{}, err
	}
	if len(page.Items) == 0 {
		return gaas.User{}, fmt.Errorf("no user %q: %w", name, gaas.ErrNotFound)
	}
	return page.Items[0], nil
}

func (c *adminCmd) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// everyPage reads every page of a listing; fetch reads the page at cursor
// ("" for the first) and returns its items and the next cursor.
func everyPage[T any](fetch func(cursor string) ([]T, string, error)) ([]T, error) {
	var all []T
	cursor := ""
	for {
		items, next, err := fetch(cursor)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		if next == "" {
			return all, nil
		}
		cursor = next
	}
}

// printRows prints items: with -json as a JSON list, each through toJSON;
// else as aligned columns under header (tab separated), row giving each
// item's line.
func printRows[T, J any](c *adminCmd, items []T, toJSON func(T) J, header string, row func(T) string) error {
	if *c.asJSON {
		out := make([]J, len(items))
		for i, it := range items {
			out[i] = toJSON(it)
		}
		return c.printJSON(out)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, it := range items {
		fmt.Fprintln(tw, row(it))
	}
	return tw.Flush()
}

func (c *adminCmd) printUsers(users []gaas.User) error {
	return printRows(c, users, toUserJSON, "ID\tUSERNAME\tROLE\tBALANCE\tDISABLED\tCREATED", func(u gaas.User) string {
		return fmt.Sprintf("%d\t%s\t%s\t%s\t%t\t%s", u.ID, u.Username, u.Role, u.Balance, u.Disabled, u.CreatedAt.Format(time.RFC3339))
	})
}

func (c *adminCmd) userAdd(ctx context.Context, admin, fromStdin bool) error {
	role := gaas.RoleUser
	if admin {
		role = gaas.RoleAdmin
	}
	if err := gaas.ValidateUsername(c.args[0]); err != nil {
		return err
	}
	hash, err := c.passwordHash(fromStdin)
	if err != nil {
		return err
	}
	u, err := c.database.Accounts.CreateUserAs(ctx, c.actor, c.args[0], hash, role)
	if err != nil {
		return err
	}
	return c.printUser(u)
}

// passwordHash reads a password (readPassword), checks it and hashes it.
func (c *adminCmd) passwordHash(fromStdin bool) (string, error) {
	password, err := readPassword(stdin, c.stdout, fromStdin)
	if err != nil {
		return "", err
	}
	if err := gaas.ValidatePassword(password); err != nil {
		return "", err
	}
	return authn.Hasher{}.Hash(password)
}

// printUser prints one user, as a table of one or as JSON.
func (c *adminCmd) printUser(u gaas.User) error {
	if *c.asJSON {
		return c.printJSON(toUserJSON(u))
	}
	return c.printUsers([]gaas.User{u})
}

// userPasswd sets a new password; the user's tokens stop working.
func (c *adminCmd) userPasswd(ctx context.Context, fromStdin bool) error {
	u, err := c.userByName(ctx, c.args[0])
	if err != nil {
		return err
	}
	hash, err := c.passwordHash(fromStdin)
	if err != nil {
		return err
	}
	u, err = c.database.Accounts.ResetPasswordHashAs(ctx, c.actor, u.ID, hash)
	if err != nil {
		return err
	}
	return c.printUser(u)
}

func (c *adminCmd) userDisable(ctx context.Context, disabled bool) error {
	u, err := c.userByName(ctx, c.args[0])
	if err != nil {
		return err
	}
	u, err = c.database.As(c.actor).SetDisabled(ctx, gaas.SetDisabledRequest{UserID: u.ID, Disabled: disabled})
	if err != nil {
		return err
	}
	return c.printUser(u)
}

func (c *adminCmd) userRole(ctx context.Context) error {
	role := gaas.Role(c.args[1])
	if !role.Valid() {
		return fmt.Errorf("%w: the role is admin or user, not %q", errUsage, c.args[1])
	}
	u, err := c.userByName(ctx, c.args[0])
	if err != nil {
		return err
	}
	u, err = c.database.As(c.actor).SetRole(ctx, gaas.SetRoleRequest{UserID: u.ID, Role: role})
	if err != nil {
		return err
	}
	return c.printUser(u)
}

// readPassword reads a password: the first line of in when fromStdin, or
// else from the terminal on stdin, without echo, after a prompt on out.
func readPassword(in io.Reader, out io.Writer, fromStdin bool) (string, error) {
	if !fromStdin {
		f, ok := in.(*os.File)
		if !ok {
			return "", fmt.Errorf("%w: stdin is not a terminal; give -password-stdin", errUsage)
		}
		fmt.Fprint(out, "Password: ")
		restore, err := echoOff(f)
		if err != nil {
			return "", fmt.Errorf("%w: stdin is not a terminal (%v); give -password-stdin", errUsage, err)
		}
		defer fmt.Fprintln(out)
		defer restore()
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", fmt.Errorf("%w: read the password: %v", errUsage, err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func (c *adminCmd) userList(ctx context.Context) error {
	var all []gaas.User
	f := gaas.UserFilter{Page: gaas.Page{Limit: gaas.MaxLimit}}
	for {
		page, err := c.database.As(c.actor).Users(ctx, f)
		if err != nil {
			return err
		}
		all = append(all, page.Items...)
		if page.NextCursor == "" {
			break
		}
		f.Cursor = page.NextCursor
	}
	return c.printUsers(all)
}

func (c *adminCmd) userShow(ctx context.Context) error {
	u, err := c.userByName(ctx, c.args[0])
	if err != nil {
		return err
	}
	return c.printUser(u)
}

func (c *adminCmd) quotaChange(ctx context.Context, verb, reason string) error {
	credits, err := gaas.ParseCredits(c.args[1])
	if err != nil {
		return fmt.Errorf("%w: CREDITS %q: %v", errUsage, c.args[1], err)
	}
	if reason == "" {
		return fmt.Errorf("%w: %s: -reason is required", errUsage, c.name())
	}
	u, err := c.userByName(ctx, c.args[0])
	if err != nil {
		return err
	}
	if verb == "grant" {
		u, err = c.database.As(c.actor).Grant(ctx, gaas.GrantRequest{UserID: u.ID, Delta: credits, Reason: reason})
	} else {
		u, err = c.database.As(c.actor).SetBalance(ctx, gaas.SetBalanceRequest{UserID: u.ID, Balance: credits, Reason: reason})
	}
	if err != nil {
		return err
	}
	return c.printUser(u)
}

// entryJSON is a ledger entry as -json prints it.
type entryJSON struct {
	ID           int64     `json:"id"`
	AllocationID int64     `json:"allocation_id"`
	JobID        *int64    `json:"job_id"`
	Actor        string    `json:"actor"`
	Kind         string    `json:"kind"`
	Delta        string    `json:"delta"`
	Remaining    string    `json:"remaining"`
	Balance      string    `json:"balance"`
	Reason       string    `json:"reason"`
	CreatedAt    time.Time `json:"created_at"`
}

func (c *adminCmd) quotaShow(ctx context.Context, n int) error {
	if n < 0 {
		return fmt.Errorf("%w: -n must be 0 or more", errUsage)
	}
	u, err := c.userByName(ctx, c.args[0])
	if err != nil {
		return err
	}
	var last []gaas.LedgerEntry
	req := gaas.LedgerRequest{UserID: u.ID, Page: gaas.Page{Limit: gaas.MaxLimit}}
	for {
		page, err := c.database.As(c.actor).Ledger(ctx, req)
		if err != nil {
			return err
		}
		last = append(last, page.Items...)
		if len(last) > n {
			last = last[len(last)-n:]
		}
		if page.NextCursor == "" {
			break
		}
		req.Cursor = page.NextCursor
	}
	entries := make([]entryJSON, len(last))
	for i, e := range last {
		entries[i] = entryJSON{e.ID, e.AllocationID, e.JobID, actorName(e.ActorID, e.ActorSystem), string(e.Kind), e.Delta.String(), e.Remaining.String(),
			e.Balance.String(), e.Reason, e.CreatedAt}
	}
	if *c.asJSON {
		return c.printJSON(struct {
			User    userJSON    `json:"user"`
			Entries []entryJSON `json:"entries"`
		}{toUserJSON(u), entries})
	}
	fmt.Fprintf(c.stdout, "%s (user %d): balance %s credits\n\n", u.Username, u.ID, u.Balance)
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ENTRY\tWHEN\tALLOCATION\tKIND\tDELTA\tREMAINING\tBALANCE\tACTOR\tJOB\tREASON")
	for _, e := range entries {
		job := "-"
		if e.JobID != nil {
			job = fmt.Sprint(*e.JobID)
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.CreatedAt.Format(time.RFC3339), e.AllocationID, e.Kind,
			e.Delta, e.Remaining, e.Balance, e.Actor, job, e.Reason)
	}
	return tw.Flush()
}

// jobJSON is a job as -json prints it.
type jobJSON struct {
	ID             int64     `json:"id"`
	User           string    `json:"user"`
	UserID         int64     `json:"user_id"`
	Status         string    `json:"status"`
	GPUType        string    `json:"gpu_type"`
	GPUCount       int       `json:"gpu_count"`
	EstimatedHours string    `json:"estimated_hours"`
	ActualHours    *string   `json:"actual_hours"`
	Rate           string    `json:"rate"`
	Cost           string    `json:"cost"`
	Command        string    `json:"command"`
	CreatedAt      time.Time `json:"created_at"`
}

// jobsList prints every job, newest first, of one user or all.
func (c *adminCmd) jobsList(ctx context.Context, owner string, status gaas.JobStatus) error {
	if status != "" && !status.Valid() {
		return fmt.Errorf("%w: -status must be one of %s", errUsage, gaas.StatusList())
	}
	f := gaas.JobFilter{Status: status, Page: gaas.Page{Limit: gaas.MaxLimit}}
	names := map[int64]string{}
	if owner != "" {
		u, err := c.userByName(ctx, owner)
		if err != nil {
			return err
		}
		f.UserID, names[u.ID] = u.ID, u.Username
	}
	var jobs []jobJSON
	for {
		page, err := c.database.As(c.actor).Jobs(ctx, f)
		if err != nil {
			return err
		}
		for _, j := range page.Items {
			if _, ok := names[j.UserID]; !ok {
				u, err := c.database.As(c.actor).User(ctx, gaas.GetUserRequest{UserID: j.UserID})
				if err != nil {
					return err
				}
				names[j.UserID] = u.Username
			}
			var actual *string
			if j.ActualHours != nil {
				a := j.ActualHours.String()
				actual = &a
			}
			jobs = append(jobs, jobJSON{j.ID, names[j.UserID], j.UserID, string(j.Status), j.GPUType, j.GPUCount,
				j.EstimatedHours.String(), actual, j.Rate.String(), j.Cost.String(), j.Command, j.CreatedAt})
		}
		if page.NextCursor == "" {
			break
		}
		f.Cursor = page.NextCursor
	}
	if *c.asJSON {
		if jobs == nil {
			jobs = []jobJSON{}
		}
		return c.printJSON(jobs)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUSER\tSTATUS\tGPU\tGPUS\tESTIMATED\tACTUAL\tRATE\tCOST\tCREATED\tCOMMAND")
	for _, j := range jobs {
		actual := "-"
		if j.ActualHours != nil {
			actual = *j.ActualHours
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%q\n", j.ID, j.User, j.Status, j.GPUType, j.GPUCount,
			j.EstimatedHours, actual, j.Rate, j.Cost, j.CreatedAt.Format(time.RFC3339), j.Command)
	}
	return tw.Flush()
}
