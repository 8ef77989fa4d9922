// Command gaasd runs the gaas HTTP API: GPU hours as a service.
//
// With no set-up it keeps its data in ./gaas.db (SQLite) and listens on
// :8000. Run it with -h for every flag; each has an environment variable.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	_ "net/http/pprof" // served only on -debug-addr
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/gaas-io/gaas/authn"
	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server"
	"github.com/gaas-io/gaas/server/worker"
	"github.com/gaas-io/gaas/store"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-signals
		cancel() // the first signal shuts down gracefully
		<-signals
		fmt.Fprintln(os.Stderr, "gaasd: second signal, exiting at once")
		os.Exit(1)
	}()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "gaasd:", err)
	}
	os.Exit(exitCode(err))
}

// exitCode is gaasd's exit status after run returned err: 0 done (or help
// shown), 1 refused (a broken invariant, an unhealthy server, an operation
// the database refused), 2 a usage error or a failure to start.
func exitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errViolations), errors.Is(err, errUnhealthy), errors.Is(err, errRefused):
		return 1
	}
	return 2
}

// shutdownTimeout is how long requests in flight may take to finish after a signal.
const shutdownTimeout = 10 * time.Second

// The HTTP server's timeouts. A request's body may take until readTimeout
// to arrive, and its answer must be written within writeTimeout of its
// headers; so a submission, whose wait for the database -db-batch-timeout
// bounds, is answered before its connection is cut only if that wait is
// shorter than writeTimeout - readTimeout.
const (
	readTimeout  = 15 * time.Second
	writeTimeout = 30 * time.Second
)

// config is what the flags and the environment say.
type config struct {
	addr          string
	db            string
	jwtSecret     string
	tokenTTL      time.Duration
	defaultQuota  gaas.Credits
	iterations    int
	adminUsername string
	adminPassword string
	adoptAdmin    bool
	store         store.Options
	server        server.Config
	debugAddr     string
	metricsAddr   string
	maxConns      int // 0: from the descriptor limit
	idleTimeout   time.Duration
	version       bool // -version: print the version and exit
	// catalogueFile, when set, declares the GPU catalogue, read into catalogue.
	catalogueFile string
	catalogue     []gaas.GPUType
	worker        workerConfig
	executor      executorConfig
	notify        notifyConfig
}

// envName is the environment variable of the flag name: -token-ttl is
// GAAS_TOKEN_TTL.
func envName(flagName string) string {
	return "GAAS_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// creditsValue is a flag of credits.
type creditsValue gaas.Credits

func (c *creditsValue) String() string { return gaas.Credits(*c).String() }

func (c *creditsValue) Set(s string) error {
	v, err := gaas.ParseCredits(s)
	*c = creditsValue(v)
	return err
}

// flagRule is what a flag's value must be: ok checks it once flags and
// environment are read, and want says it in an error.
type flagRule struct {
	ok   func() bool
	want string
}

const serveUsage = `Usage: gaasd [flags]              serve the API
       gaasd help [SUBCOMMAND]      this help, or a subcommand's
       gaasd version                the module version, commit and date of this build
       gaasd import-fastapi -from OLD.db [-db TARGET] [-merge] [-rename OLD=NEW]...
       gaasd healthcheck [-addr ADDRESS]
       gaasd check [-db DATABASE]
       gaasd user add|list|show|passwd|disable|enable|role ...  manage accounts in the database directly
       gaasd quota grant|set|show ...  manage balances in the database directly
       gaasd jobs list ...              list jobs from the database directly
       gaasd gpu-types list|add|set|apply ...  manage the GPU catalogue in the database directly
       gaasd allocations list|add|end|shorten ...  manage users' allocations in the database directly
       gaasd project add|list|show|member|grant|set|transfer ...  manage projects in the database directly
       gaasd schedules list|add|pause|resume|end ...  manage recurring allocations in the database directly
       gaasd executors add|list|revoke ...  manage the tokens of executors on other machines (gaas-runner)
       gaasd report [-from TIME] [-to TIME] [-period P] [-group-by G] ...  usage by period, user, project and GPU type

Runs the gaas HTTP API. Each flag has an environment variable, named in its
description; a flag wins over its variable. GAAS_ADMIN_USERNAME and
GAAS_ADMIN_PASSWORD, when both are set, make sure that admin exists.

Exit status: 0 done, 1 refused (check found a broken invariant, healthcheck
an unhealthy server, user, quota, jobs, gpu-types, allocations, project,
schedules or report a refusal such as no such user), 2 a usage error or a failure to start.

`

// parseConfig reads flags over environment variables over defaults. -h
// prints the usage on stdout.
func parseConfig(args []string, getenv func(string) string, stdout io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("gaasd", flag.ContinueOnError)
	fs.StringVar(&c.addr, "addr", ":8000", "listen `address`")
	fs.StringVar(&c.db, "db", "gaas.db", "a SQLite `path` (:memory: too), or a postgres:// URL")
	fs.StringVar(&c.jwtSecret, "jwt-secret", "",
		"HS256 signing `key`, at least 32 bytes; when unset, a random key is generated once and kept in the database. "+
			"The least safe way to give the key: a flag shows in process listings")
	secretFile := fs.String("jwt-secret-file", "", "read the HS256 signing key from this `file` (a trailing newline is dropped)")
	fs.IntVar(&c.server.LoginsPerUser, "login-per-user", 10, "failed logins a minute for one username from one client address; 0 for no limit")
	fs.IntVar(&c.server.LoginsPerAddress, "login-per-address", 30, "failed logins a minute from one client address; 0 for no limit")
	fs.IntVar(&c.server.RegistrationsPerAddress, "register-per-address", 10,
		"accounts POST /register makes an hour for one client address; 0 for no limit")
	registration := fs.String("registration", "open", "\"open\": anyone may register; \"closed\": only admins make accounts, with POST /users")
	fs.IntVar(&c.server.RequestsPerUser, "requests-per-user", 16, "requests one user may have in flight at once, API requests and portal pages together; 0 for no limit")
	fs.IntVar(&c.maxConns, "max-conns", 0, "most client connections open at once; when all are taken, the longest idle is closed. "+
		"0 for the descriptor limit less a reserve for the database")
	fs.DurationVar(&c.idleTimeout, "idle-timeout", 30*time.Second,
		"close keep-alive connections idle this long; behind a load balancer, make it longer than the balancer's")
	fs.IntVar(&c.server.HashSlots, "hash-slots", 0, "password hashes computed at once; 0 for half the processors")
	fs.DurationVar(&c.tokenTTL, "token-ttl", 30*time.Minute, "token lifetime")
	c.defaultQuota = store.DefaultQuota
	fs.Var((*creditsValue)(&c.defaultQuota), "default-quota",
		"`credits` the default allocation of each new account holds (a credit is a GPU-hour at rate 1)")
	fs.StringVar((*string)(&c.store.DefaultQuotaPeriod), "default-quota-period", "",
		"make the default quota recurring: every new user gets -default-quota credits each `period` (daily, weekly, monthly, "+
			"quarterly or yearly) from when they are made, in UTC, what is left at a period's end expiring; empty: a one-off grant")
	fs.IntVar(&c.iterations, "pbkdf2-iterations", authn.DefaultIterations, "PBKDF2-HMAC-SHA256 work factor for new password hashes")
	fs.IntVar(&c.store.MaxConns, "db-max-conns", 0,
		"most database connections: PostgreSQL's pool (0: 10), or SQLite's readers beside its one writer (0: 4)")
	fs.DurationVar(&c.store.ConnMaxLifetime, "db-conn-max-lifetime", 30*time.Minute, "close pooled database connections after this long")
	fs.DurationVar(&c.store.StatementTimeout, "db-statement-timeout", 30*time.Second, "PostgreSQL aborts, on the server, any statement running longer")
	fs.DurationVar(&c.store.BatchTimeout, "db-batch-timeout", store.DefaultBatchTimeout,
		fmt.Sprintf("the longest wait of a job submission for the database; past it the answer is 503 with Retry-After. "+
			"Shorter than %s: the write timeout, %s, less the read timeout, %s", writeTimeout-readTimeout, writeTimeout, readTimeout))
	fs.BoolVar(&c.adoptAdmin, "adopt-admin", false,
		"make the existing account GAAS_ADMIN_USERNAME names an admin (and enable it) even if it is not one; its tokens stop working. "+
			"Without it gaasd refuses to start rather than promote an account someone else may have registered")
	fs.StringVar(&c.debugAddr, "debug-addr", "",
		"serve Go's profiler (net/http/pprof) on this `address`, apart from the API; off when empty. Keep it private")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "",
		"serve Prometheus metrics at /metrics on this `address`, apart from the API; when empty they are served with the API, "+
			"and \"off\" serves none")
	fs.StringVar(&c.server.BasePath, "base-path", "",
		"the path `prefix` under which clients reach the API, such as /gpu behind a proxy that serves it at /gpu/; "+
			"GET /openapi.json names it in the document's servers. When empty, a request's X-Forwarded-Prefix is used")
	fs.DurationVar(&c.server.SessionTTL, "session-ttl", 0,
		"how long a sign-in to the web portal lasts; 0 for 12h")
	fs.BoolVar(&c.server.SecureCookies, "secure-cookies", false,
		"mark the web portal's cookies Secure on every request, for a server behind a proxy that terminates TLS "+
			"(over TLS they are Secure anyway)")
	fs.StringVar(&c.catalogueFile, "catalogue", "",
		"a JSON `file` that declares the whole GPU catalogue; at start-up its types are created or updated, and any other type is retired. "+
			"gaasd gpu-types apply -h describes it")
	fs.BoolVar(&c.worker.enabled, "worker", true,
		"run the background worker: ended allocations expire, schedules' periods are granted, and with -stale-after stale reservations are cancelled. "+
			"Replicas on one PostgreSQL share the work, one at a time for each task; false leaves it to the others")
	fs.DurationVar(&c.worker.interval, "worker-interval", worker.DefaultInterval, "how often the worker runs each task")
	fs.DurationVar(&c.worker.leaseTTL, "worker-lease-ttl", 0,
		"how long a replica holds a task without renewing it: one that dies hands its tasks on within this and one -worker-interval; "+
			"0 for 30s, or 3 times -worker-interval when that is longer")
	fs.DurationVar(&c.worker.staleAfter, "stale-after", 0,
		"cancel, with their full return, jobs left PENDING this long since submission or APPROVED this long and not started, "+
			"such as 72h; 0 keeps them")
	executorRules := addExecutorFlags(fs, &c.executor)
	notifyFlags(fs, &c.notify, &c.store)
	fs.VisitAll(func(f *flag.Flag) { f.Usage += " (env " + envName(f.Name) + ")" })
	fs.BoolVar(&c.version, "version", false, "print the version of this build and exit")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), serveUsage)
		fs.PrintDefaults()
	}

	positive := "a positive duration such as 30s"
	count := "a whole number, 0 or more"
	rules := map[string]flagRule{
		"token-ttl":            {func() bool { return c.tokenTTL > 0 }, positive},
		"idle-timeout":         {func() bool { return c.idleTimeout > 0 }, positive},
		"db-conn-max-lifetime": {func() bool { return c.store.ConnMaxLifetime > 0 }, positive},
		"db-statement-timeout": {func() bool { return c.store.StatementTimeout > 0 }, positive},
		"db-batch-timeout": {func() bool { return c.store.BatchTimeout > 0 && c.store.BatchTimeout < writeTimeout-readTimeout },
			fmt.Sprintf("a positive duration shorter than %s (the HTTP write timeout, %s, less the read timeout, %s), "+
				"so that a submission is answered before its connection is cut", writeTimeout-readTimeout, writeTimeout, readTimeout)},
		"default-quota": {func() bool { return c.defaultQuota >= 0 }, "a number of credits, 0 or more, with at most 3 decimals"},
		"default-quota-period": {func() bool { return c.store.DefaultQuotaPeriod == "" || c.store.DefaultQuotaPeriod.Valid() },
			"daily, weekly, monthly, quarterly or yearly"},
		"pbkdf2-iterations": {func() bool { return c.iterations >= 1 && c.iterations <= authn.MaxIterations },
			fmt.Sprintf("a whole number from 1 to %d", authn.MaxIterations)},
		"db-max-conns":         {func() bool { return c.store.MaxConns >= 0 }, count},
		"login-per-user":       {func() bool { return c.server.LoginsPerUser >= 0 }, count},
		"login-per-address":    {func() bool { return c.server.LoginsPerAddress >= 0 }, count},
		"register-per-address": {func() bool { return c.server.RegistrationsPerAddress >= 0 }, count},
		"requests-per-user":    {func() bool { return c.server.RequestsPerUser >= 0 }, count},
		"hash-slots":           {func() bool { return c.server.HashSlots >= 0 }, count},
		"max-conns":            {func() bool { return c.maxConns >= 0 }, count},
		"registration":         {func() bool { return *registration == "open" || *registration == "closed" }, "open or closed"},
		"adopt-admin":          {nil, "true or false"},
		"base-path":            {func() bool { return server.ValidBasePath(c.server.BasePath) == nil }, "a path such as /gpu, with no trailing slash"},
		"session-ttl": {func() bool { return c.server.SessionTTL >= 0 && c.server.SessionTTL <= gaas.MaxSessionTTL },
			"a duration up to 2160h (90 days), or 0 for 12h"},
		"secure-cookies":  {nil, "true or false"},
		"worker":          {nil, "true or false"},
		"worker-interval": {func() bool { return c.worker.interval > 0 }, positive},
		"worker-lease-ttl": {func() bool { return c.worker.leaseTTL == 0 || c.worker.leaseTTL > c.worker.interval },
			"0, or a duration longer than -worker-interval"},
		"stale-after":     {func() bool { return c.worker.staleAfter >= 0 }, "a duration such as 72h, or 0 to keep stale reservations"},
		"webhook-timeout": {func() bool { return c.notify.timeout > 0 }, positive},
		"expiring-within": {func() bool { return c.store.ExpiringWithin > 0 }, positive},
	}

	maps.Copy(rules, executorRules)
	if err := parseFlags(fs, args, stdout); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q; gaasd help lists the subcommands", fs.Arg(0))
	}
	origin, err := applyEnv(fs, getenv, func(name string) string { return rules[name].want })
	if err != nil {
		return c, err
	}
	var bad error
	fs.VisitAll(func(f *flag.Flag) {
		if r, ok := rules[f.Name]; ok && r.ok != nil && !r.ok() && bad == nil {
			bad = fmt.Errorf("%s: must be %s", origin(f.Name, true), r.want)
		}
	})
	if bad != nil {
		return c, bad
	}
	// In the server's Config 0 means the default; here it means no limit.
	for _, l := range []*int{&c.server.LoginsPerUser, &c.server.LoginsPerAddress, &c.server.RegistrationsPerAddress, &c.server.RequestsPerUser} {
		if *l == 0 {
			*l = -1
		}
	}
	c.server.RegistrationClosed = *registration == "closed"
	if *secretFile != "" {
		if c.jwtSecret != "" {
			return c, fmt.Errorf("%s and %s are both set; give the key once", origin("jwt-secret", false), origin("jwt-secret-file", false))
		}
		b, err := os.ReadFile(*secretFile)
		if err != nil {
			return c, fmt.Errorf("%s: %w", origin("jwt-secret-file", false), err)
		}
		c.jwtSecret = strings.TrimRight(string(b), "\r\n")
		if len(c.jwtSecret) < authn.MinKeySize {
			return c, fmt.Errorf("%s holds %d bytes; at least %d are needed", origin("jwt-secret-file", true), len(c.jwtSecret), authn.MinKeySize)
		}
	}
	if c.catalogueFile != "" {
		if c.catalogue, err = readCatalogue(c.catalogueFile); err != nil {
			return c, err
		}
	}
	if c.jwtSecret != "" && len(c.jwtSecret) < authn.MinKeySize {
		return c, fmt.Errorf("%s is %d bytes; at least %d are needed", origin("jwt-secret", false), len(c.jwtSecret), authn.MinKeySize)
	}
	c.adminUsername, c.adminPassword = getenv("GAAS_ADMIN_USERNAME"), getenv("GAAS_ADMIN_PASSWORD")
	if (c.adminUsername == "") != (c.adminPassword == "") {
		return c, errors.New("GAAS_ADMIN_USERNAME and GAAS_ADMIN_PASSWORD must be set together")
	}
	if c.adminUsername != "" {
		if err := gaas.ValidateUsername(c.adminUsername); err != nil {
			return c, fmt.Errorf("GAAS_ADMIN_USERNAME: %w", err)
		}
		if err := gaas.ValidatePassword(c.adminPassword); err != nil {
			return c, fmt.Errorf("GAAS_ADMIN_PASSWORD: %w", err)
		}
	}
	return c, nil
}

// parseFlags parses args into fs. -h prints the usage on stdout and
// returns flag.ErrHelp; any other mistake is the error, which says where
// to find the usage.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stdout)
		fs.Usage()
		return err
	}
	if err != nil {
		return fmt.Errorf("%w; %s -h lists the flags", err, fs.Name())
	}
	return nil
}

// applyEnv sets each flag the command line left unset from its environment
// variable (envName), when that is not empty. An error names the variable
// and, with want(flag) when it says something, what its value must be.
// origin then names where a flag's value came from, for later errors: the
// variable or the flag, with the value when withValue.
func applyEnv(fs *flag.FlagSet, getenv func(string) string, want func(flag string) string) (
	origin func(flag string, withValue bool) string, err error) {
	fromEnv := map[string]bool{} // of flags whose usage names their variable
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })
	fs.VisitAll(func(f *flag.Flag) {
		v := getenv(envName(f.Name))
		hasEnv := strings.HasSuffix(f.Usage, "(env "+envName(f.Name)+")")
		if err != nil || onCommandLine[f.Name] || v == "" || !hasEnv {
			return
		}
		fromEnv[f.Name] = true
		if setErr := f.Value.Set(v); setErr != nil {
			if w := want(f.Name); w != "" {
				err = fmt.Errorf("%s=%q: must be %s", envName(f.Name), v, w)
			} else {
				err = fmt.Errorf("%s=%q: %w", envName(f.Name), v, setErr)
			}
		}
	})
	origin = func(name string, withValue bool) string {
		switch {
		case fromEnv[name] && withValue:
			return fmt.Sprintf("%s=%q", envName(name), fs.Lookup(name).Value)
		case fromEnv[name]:
			return envName(name)
		case withValue:
			return fmt.Sprintf("-%s %q", name, fs.Lookup(name).Value)
		default:
			return "-" + name
		}
	}
	return origin, err
}

// run is gaasd. With no subcommand it serves until ctx is cancelled, then
// shuts down gracefully and returns nil. Help goes to stdout, and is
// flag.ErrHelp, which is no failure.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "help":
			if len(args) > 2 {
				return errors.New("help: name one subcommand")
			}
			if len(args) == 2 && (args[1] == "help" || args[1] == "version") {
				args = args[:1]
			}
			if len(args) == 2 && !slices.Contains(subcommands, args[1]) {
				return fmt.Errorf("help: no subcommand %q; there are %s", args[1], strings.Join(subcommands, ", "))
			}
			return run(ctx, append(args[1:], "-h"), getenv, stdout, stderr)
		case "version":
			if len(args) > 1 {
				return fmt.Errorf("version: unexpected argument %q", args[1])
			}
			printVersion(stdout)
			return nil
		case "import-fastapi":
			return runImport(ctx, args[1:], getenv, stdout, stderr)
		case "healthcheck":
			return runHealthcheck(ctx, args[1:], getenv, stdout)
		case "check":
			return runCheck(ctx, args[1:], getenv, stdout, stderr)
		case "user", "quota", "jobs", "gpu-types", "allocations", "project", "schedules", "executors", "report":
			return runAdmin(ctx, args, getenv, stdout)
		}
	}
	return serve(ctx, args, getenv, stdout, stderr)
}

// subcommands are those "gaasd help SUBCOMMAND" explains.
var subcommands = []string{"import-fastapi", "healthcheck", "check", "user", "quota", "jobs", "gpu-types", "allocations", "project", "schedules", "executors", "report"}

// printVersion prints the module version, commit and date of this build,
// as GET /version answers them.
func printVersion(w io.Writer) {
	v := server.BuildVersion()
	fmt.Fprintf(w, "gaasd %s", v.Version)
	if v.Commit != "" {
		fmt.Fprintf(w, " commit %s", v.Commit)
		if v.Modified {
			fmt.Fprint(w, " (modified)")
		}
	}
	if v.Date != "" {
		fmt.Fprintf(w, " of %s", v.Date)
	}
	fmt.Fprintf(w, ", built with %s\n", v.GoVersion)
}

// bootstrapAdmin makes sure the admin of GAAS_ADMIN_USERNAME exists. An
// existing account that is not an admin is promoted only with -adopt-admin:
// whoever registered the name first must not become admin unasked.
func bootstrapAdmin(ctx context.Context, logger *slog.Logger, auth *authn.Authenticator, cfg config) error {
	ensure := auth.EnsureAdmin
	if cfg.adoptAdmin {
		ensure = auth.AdoptAdmin
	}
	admin, err := ensure(ctx, cfg.adminUsername, cfg.adminPassword)
	switch {
	case errors.Is(err, gaas.ErrConflict):
		return fmt.Errorf("GAAS_ADMIN_USERNAME %q names an existing account that is not an admin; "+
			"to make it the admin (its tokens stop working) start once with -adopt-admin (or GAAS_ADOPT_ADMIN=true), or choose another name",
			cfg.adminUsername)
	case err != nil:
		return fmt.Errorf("GAAS_ADMIN_USERNAME: %w", err)
	case admin.Disabled:
		logger.Warn("the admin account is disabled and was left so; enable it with POST /users/{id}/enable, or start once with -adopt-admin",
			"username", admin.Username, "user_id", admin.ID)
	default:
		logger.Info("admin account ready", "username", admin.Username, "user_id", admin.ID)
	}
	return nil
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stdout)
	if err != nil {
		return err
	}
	if cfg.version {
		printVersion(stdout)
		return nil
	}
	logger := slog.New(slog.NewJSONHandler(stdout, nil))

	// Every address is bound before the database is opened, so that a port
	// in use leaves no new database file behind.
	maxConns, err := connCap(cfg, logger)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	var dln, mln net.Listener
	if cfg.debugAddr != "" {
		if dln, err = net.Listen("tcp", cfg.debugAddr); err != nil {
			return fmt.Errorf("listen on -debug-addr: %w", err)
		}
		defer dln.Close()
	}
	if cfg.metricsAddr != "" && cfg.metricsAddr != "off" {
		if mln, err = net.Listen("tcp", cfg.metricsAddr); err != nil {
			return fmt.Errorf("listen on -metrics-addr: %w", err)
		}
		defer mln.Close()
	}

	// The executor too comes before the database: a local one finds and
	// stops what a crashed gaasd left running.
	run, err := newRunner(ctx, cfg.executor)
	if err != nil {
		return fmt.Errorf("-executor %s: %w", cfg.executor.kind, err)
	}
	defer run.stop(logger, cfg.executor.localGrace)

	opts := cfg.store
	opts.DefaultQuota = cfg.defaultQuota
	if opts.DefaultQuota == 0 {
		opts.DefaultQuota = -1 // the store reads 0 as "the default"; -1 is "nothing"
	}
	registry := prometheus.NewRegistry()
	metrics := server.NewMetrics(registry)
	opts.Observer = metrics
	db, err := store.Open(ctx, cfg.db, opts)
	if err != nil {
		return fmt.Errorf("open database %s: %w", store.RedactDSN(cfg.db), err)
	}
	defer db.Close()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for name, pool := range db.Pools() {
		registry.MustRegister(collectors.NewDBStatsCollector(pool, name))
	}
	metrics.TallyState(db)
	if cfg.catalogueFile != "" {
		if err := applyCatalogueFile(ctx, logger, db, cfg.catalogueFile, cfg.catalogue); err != nil {
			return err
		}
	}

	key := []byte(cfg.jwtSecret)
	if len(key) == 0 {
		if key, err = db.SigningKey(ctx); err != nil {
			return err
		}
		logger.Info("signing tokens with the key generated and kept in the database; set GAAS_JWT_SECRET to choose one")
	}
	tokens, err := authn.NewTokens(key, cfg.tokenTTL, nil)
	if err != nil {
		return err
	}
	auth := authn.NewAuthenticator(db.Accounts, authn.Hasher{Iterations: cfg.iterations}, tokens)
	if cfg.adminUsername != "" {
		if err := bootstrapAdmin(ctx, logger, auth, cfg); err != nil {
			return err
		}
	}
	admins, err := db.EnabledAdmins(ctx)
	if err != nil {
		return err
	}

	scfg := cfg.server
	if cfg.metricsAddr != "off" {
		scfg.Metrics = metrics
		scfg.ServeMetrics = cfg.metricsAddr == ""
	}
	services := server.Services{Auth: auth, Users: db.Users, Jobs: db.Jobs, Quota: db.Quota,
		Catalogue: db.Catalogue, Allocations: db.Allocations, Projects: db.Projects, Schedules: db.Schedules, Webhooks: db.Webhooks, Reports: db.Reports, DB: db,
		Executors: db.Executors, Dispatch: db.Dispatch, Sessions: authn.NewSessions(auth, db.Sessions)}
	srv := &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       cfg.idleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	if dln != nil {
		debug := &http.Server{Handler: http.DefaultServeMux, ReadHeaderTimeout: 5 * time.Second}
		go debug.Serve(dln)
		defer debug.Close()
		logger.Info("profiler listening", "addr", dln.Addr().String())
	}
	if mln != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", metrics.Handler())
		msrv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go msrv.Serve(mln)
		defer msrv.Close()
		logger.Info("metrics listening", "addr", mln.Addr().String())
	}
	stopWorker, err := startWorker(ctx, logger, db, cfg.worker,
		notifyTasks(logger, db, cfg.notify, "gaas-webhooks/"+server.BuildVersion().Version)...)
	if err != nil {
		return err
	}
	defer stopWorker()
	logs, stopExecutor, err := startExecutor(ctx, logger, db, run, cfg.executor)
	if err != nil {
		return fmt.Errorf("-executor %s: %w", cfg.executor.kind, err)
	}
	defer stopExecutor()
	services.Logs = logs
	srv.Handler = server.NewServer(logger, scfg, services)
	limited := limitConns(ln, maxConns)
	srv.ConnState = limited.connState
	logger.Info("listening", "addr", ln.Addr().String(), "docs", docsURL(ln.Addr()), "admin", adminStatus(admins),
		"db", store.RedactDSN(cfg.db), "max_conns", maxConns)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(limited) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		logger.Warn("requests still in flight were cut off", "err", err)
	}
	stopExecutor()
	run.stop(logger, cfg.executor.localGrace)
	stopWorker()
	if err := db.Close(); err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// docsURL is the address of the API's /docs page for a person on this
// machine: localhost when gaasd listens on every interface.
func docsURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() || ip.IsLoopback() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/docs"
}

// adminStatus says, in the start-up line, whether anyone can administer the
// service, and how to make an admin when no one can.
func adminStatus(enabledAdmins int) string {
	if enabledAdmins > 0 {
		return fmt.Sprintf("%d enabled admin account(s)", enabledAdmins)
	}
	return "none: to make one, restart with GAAS_ADMIN_USERNAME and GAAS_ADMIN_PASSWORD set"
}

// connCap is how many client connections gaasd holds open: -max-conns, or
// the descriptor limit less a reserve for what else needs descriptors.
// Each database connection takes up to three (SQLite's file, its log and
// its shared memory), and 64 are left for the other listeners, the logs
// and what the runtime opens.
func connCap(cfg config, logger *slog.Logger) (int, error) {
	limit, err := descriptorLimit()
	if err != nil {
		return 0, err
	}
	dbConns := cfg.store.MaxConns
	if dbConns == 0 {
		dbConns = 10 // the larger of the two stores' defaults
	}
	room := limit - 3*(dbConns+1) - 64
	if cfg.maxConns > 0 {
		if cfg.maxConns > room {
			logger.Warn("-max-conns leaves too few file descriptors for the database; raise the limit (ulimit -n) or lower -max-conns",
				"max_conns", cfg.maxConns, "descriptor_limit", limit, "room", room)
		}
		return cfg.maxConns, nil
	}
	if room < 16 {
		return 0, fmt.Errorf("the descriptor limit, %d, leaves no room for connections beside the database; raise it (ulimit -n) or set -max-conns", limit)
	}
	return room, nil
}
