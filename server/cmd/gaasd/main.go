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
	"net"
	"net/http"
	_ "net/http/pprof" // served only on -debug-addr
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/gaas-io/gaas/authn"
	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server"
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
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.Is(err, errViolations):
		fmt.Fprintln(os.Stderr, "gaasd:", err)
		os.Exit(1)
	case err != nil:
		fmt.Fprintln(os.Stderr, "gaasd:", err)
		os.Exit(2)
	}
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
	defaultQuota  gaas.Hours
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
}

// parseConfig reads flags over environment variables over defaults.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("gaasd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(name, def string) string { return envOr(getenv, name, def) }
	fs.StringVar(&c.addr, "addr", env("GAAS_ADDR", ":8000"), "listen `address` (env GAAS_ADDR)")
	fs.StringVar(&c.db, "db", env("GAAS_DB", "gaas.db"), "a SQLite `path` (:memory: too), or a postgres:// URL (env GAAS_DB)")
	fs.StringVar(&c.jwtSecret, "jwt-secret", getenv("GAAS_JWT_SECRET"),
		"HS256 signing `key`, at least 32 bytes; when unset, a random key is generated once and kept in the database. "+
			"The least safe way to give the key: a flag shows in process listings (env GAAS_JWT_SECRET)")
	secretFile := fs.String("jwt-secret-file", getenv("GAAS_JWT_SECRET_FILE"),
		"read the HS256 signing key from this `file` (a trailing newline is dropped) (env GAAS_JWT_SECRET_FILE)")
	perUser := fs.String("login-per-user", env("GAAS_LOGIN_PER_USER", "10"),
		"failed logins a minute for one username from one client address; 0 for no limit (env GAAS_LOGIN_PER_USER)")
	perAddr := fs.String("login-per-address", env("GAAS_LOGIN_PER_ADDRESS", "30"),
		"failed logins a minute from one client address; 0 for no limit (env GAAS_LOGIN_PER_ADDRESS)")
	registerPerAddr := fs.String("register-per-address", env("GAAS_REGISTER_PER_ADDRESS", "10"),
		"accounts POST /register makes an hour for one client address; 0 for no limit (env GAAS_REGISTER_PER_ADDRESS)")
	registration := fs.String("registration", env("GAAS_REGISTRATION", "open"),
		"\"open\": anyone may register; \"closed\": only admins make accounts, with POST /users (env GAAS_REGISTRATION)")
	requestsPerUser := fs.String("requests-per-user", env("GAAS_REQUESTS_PER_USER", "16"),
		"requests one user may have in flight at once; 0 for no limit (env GAAS_REQUESTS_PER_USER)")
	maxConns := fs.String("max-conns", env("GAAS_MAX_CONNS", "0"),
		"most client `connections` open at once; when all are taken, the longest idle is closed. "+
			"0 for the descriptor limit less a reserve for the database (env GAAS_MAX_CONNS)")
	idle := fs.String("idle-timeout", env("GAAS_IDLE_TIMEOUT", "30s"),
		"close keep-alive connections idle this `long`; behind a load balancer, make it longer than the balancer's (env GAAS_IDLE_TIMEOUT)")
	hashSlots := fs.String("hash-slots", env("GAAS_HASH_SLOTS", "0"),
		"password hashes computed at once; 0 for half the processors (env GAAS_HASH_SLOTS)")
	ttl := fs.String("token-ttl", env("GAAS_TOKEN_TTL", "30m"), "token `lifetime` (env GAAS_TOKEN_TTL)")
	quota := fs.String("default-quota", env("GAAS_DEFAULT_QUOTA", "10"), "`hours` given to each new account (env GAAS_DEFAULT_QUOTA)")
	iterations := fs.String("pbkdf2-iterations", env("GAAS_PBKDF2_ITERATIONS", strconv.Itoa(authn.DefaultIterations)),
		"PBKDF2-HMAC-SHA256 work `factor` for new password hashes (env GAAS_PBKDF2_ITERATIONS)")
	dbMaxConns := fs.String("db-max-conns", env("GAAS_DB_MAX_CONNS", "0"),
		"most database `connections`: PostgreSQL's pool (0: 10), or SQLite's readers beside its one writer (0: 4) (env GAAS_DB_MAX_CONNS)")
	lifetime := fs.String("db-conn-max-lifetime", env("GAAS_DB_CONN_MAX_LIFETIME", "30m"),
		"close pooled database connections after this `long` (env GAAS_DB_CONN_MAX_LIFETIME)")
	stmtTimeout := fs.String("db-statement-timeout", env("GAAS_DB_STATEMENT_TIMEOUT", "30s"),
		"PostgreSQL aborts, on the server, any statement running longer (env GAAS_DB_STATEMENT_TIMEOUT)")
	batchTimeout := fs.String("db-batch-timeout", env("GAAS_DB_BATCH_TIMEOUT", store.DefaultBatchTimeout.String()),
		fmt.Sprintf("the longest `wait` of a job submission for the database; past it the answer is 503 with Retry-After. "+
			"Shorter than %s: the write timeout, %s, less the read timeout, %s (env GAAS_DB_BATCH_TIMEOUT)",
			writeTimeout-readTimeout, writeTimeout, readTimeout))
	fs.BoolVar(&c.adoptAdmin, "adopt-admin", false,
		"make the existing account GAAS_ADMIN_USERNAME names an admin (and enable it) even if it is not one; its tokens stop working. "+
			"Without it gaasd refuses to start rather than promote an account someone else may have registered (env GAAS_ADOPT_ADMIN)")
	fs.StringVar(&c.debugAddr, "debug-addr", getenv("GAAS_DEBUG_ADDR"),
		"serve Go's profiler (net/http/pprof) on this `address`, apart from the API; off when empty. Keep it private (env GAAS_DEBUG_ADDR)")
	fs.StringVar(&c.metricsAddr, "metrics-addr", getenv("GAAS_METRICS_ADDR"),
		"serve Prometheus metrics at /metrics on this `address`, apart from the API; when empty they are served with the API, "+
			"and \"off\" serves none (env GAAS_METRICS_ADDR)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: gaasd [flags]\n       gaasd import-fastapi -from OLD.db [-db TARGET] [-merge] [-rename OLD=NEW]...\n"+
			"       gaasd healthcheck [-addr ADDRESS]\n       gaasd check [-db DATABASE]\n\n"+
			"Runs the gaas HTTP API. Flags win over environment variables.\n"+
			"GAAS_ADMIN_USERNAME and GAAS_ADMIN_PASSWORD, when both are set, make sure that admin exists.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if c.tokenTTL, err = time.ParseDuration(*ttl); err != nil || c.tokenTTL <= 0 {
		return c, fmt.Errorf("-token-ttl %q: must be a positive duration such as 30m", *ttl)
	}
	if c.defaultQuota, err = gaas.ParseHours(*quota); err != nil || c.defaultQuota < 0 {
		return c, fmt.Errorf("-default-quota %q: must be a number of hours, 0 or more, with at most 3 decimals", *quota)
	}
	if c.iterations, err = strconv.Atoi(*iterations); err != nil || c.iterations < 1 || c.iterations > authn.MaxIterations {
		return c, fmt.Errorf("-pbkdf2-iterations %q: must be a whole number from 1 to %d", *iterations, authn.MaxIterations)
	}
	if c.store.MaxConns, err = strconv.Atoi(*dbMaxConns); err != nil || c.store.MaxConns < 0 {
		return c, fmt.Errorf("-db-max-conns %q: must be a whole number, 0 or more", *dbMaxConns)
	}
	if c.store.ConnMaxLifetime, err = time.ParseDuration(*lifetime); err != nil || c.store.ConnMaxLifetime <= 0 {
		return c, fmt.Errorf("-db-conn-max-lifetime %q: must be a positive duration such as 30m", *lifetime)
	}
	if c.store.StatementTimeout, err = time.ParseDuration(*stmtTimeout); err != nil || c.store.StatementTimeout <= 0 {
		return c, fmt.Errorf("-db-statement-timeout %q: must be a positive duration such as 30s", *stmtTimeout)
	}
	c.store.BatchTimeout, err = time.ParseDuration(*batchTimeout)
	if limit := writeTimeout - readTimeout; err != nil || c.store.BatchTimeout <= 0 || c.store.BatchTimeout >= limit {
		return c, fmt.Errorf("-db-batch-timeout %q: must be a positive duration shorter than %s (the HTTP write timeout, %s, less the read timeout, %s), "+
			"so that a submission is answered before its connection is cut", *batchTimeout, limit, writeTimeout, readTimeout)
	}
	for _, f := range []struct {
		name, value string
		dst         *int
	}{{"-login-per-user", *perUser, &c.server.LoginsPerUser}, {"-login-per-address", *perAddr, &c.server.LoginsPerAddress}, {"-hash-slots", *hashSlots, &c.server.HashSlots},
		{"-register-per-address", *registerPerAddr, &c.server.RegistrationsPerAddress}, {"-requests-per-user", *requestsPerUser, &c.server.RequestsPerUser},
		{"-max-conns", *maxConns, &c.maxConns}} {
		if *f.dst, err = strconv.Atoi(f.value); err != nil || *f.dst < 0 {
			return c, fmt.Errorf("%s %q: must be a whole number, 0 or more", f.name, f.value)
		}
	}
	// In the server's Config 0 means the default; here it means no limit.
	for _, l := range []*int{&c.server.LoginsPerUser, &c.server.LoginsPerAddress, &c.server.RegistrationsPerAddress, &c.server.RequestsPerUser} {
		if *l == 0 {
			*l = -1
		}
	}
	switch *registration {
	case "open":
	case "closed":
		c.server.RegistrationClosed = true
	default:
		return c, fmt.Errorf("-registration %q: must be open or closed", *registration)
	}
	if c.idleTimeout, err = time.ParseDuration(*idle); err != nil || c.idleTimeout <= 0 {
		return c, fmt.Errorf("-idle-timeout %q: must be a positive duration such as 30s", *idle)
	}
	if *secretFile != "" {
		if c.jwtSecret != "" {
			return c, errors.New("-jwt-secret and -jwt-secret-file are both set; give the key once")
		}
		b, err := os.ReadFile(*secretFile)
		if err != nil {
			return c, fmt.Errorf("-jwt-secret-file: %w", err)
		}
		c.jwtSecret = strings.TrimRight(string(b), "\r\n")
		if len(c.jwtSecret) < authn.MinKeySize {
			return c, fmt.Errorf("-jwt-secret-file holds %d bytes; at least %d are needed", len(c.jwtSecret), authn.MinKeySize)
		}
	}
	if c.jwtSecret != "" && len(c.jwtSecret) < authn.MinKeySize {
		return c, fmt.Errorf("-jwt-secret is %d bytes; at least %d are needed", len(c.jwtSecret), authn.MinKeySize)
	}
	if !flagSet(fs, "adopt-admin") && getenv("GAAS_ADOPT_ADMIN") != "" {
		if c.adoptAdmin, err = strconv.ParseBool(getenv("GAAS_ADOPT_ADMIN")); err != nil {
			return c, fmt.Errorf("GAAS_ADOPT_ADMIN %q: must be true or false", getenv("GAAS_ADOPT_ADMIN"))
		}
	}
	c.adminUsername, c.adminPassword = getenv("GAAS_ADMIN_USERNAME"), getenv("GAAS_ADMIN_PASSWORD")
	if (c.adminUsername == "") != (c.adminPassword == "") {
		return c, errors.New("GAAS_ADMIN_USERNAME and GAAS_ADMIN_PASSWORD must be set together")
	}
	return c, nil
}

// flagSet reports whether the command line set the flag name.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// run is gaasd. With no subcommand it serves until ctx is cancelled, then
// shuts down gracefully and returns nil.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "import-fastapi":
			return runImport(ctx, args[1:], getenv, stdout, stderr)
		case "healthcheck":
			return runHealthcheck(ctx, args[1:], getenv, stderr)
		case "check":
			return runCheck(ctx, args[1:], getenv, stdout, stderr)
		}
	}
	return serve(ctx, args, getenv, stdout, stderr)
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
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(stdout, nil))

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

	scfg := cfg.server
	if cfg.metricsAddr != "off" {
		scfg.Metrics = metrics
		scfg.ServeMetrics = cfg.metricsAddr == ""
	}
	handler := server.NewServer(logger, scfg, auth, db.Users, db.Jobs, db.Quota, db)
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       cfg.idleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	if cfg.debugAddr != "" {
		dln, err := net.Listen("tcp", cfg.debugAddr)
		if err != nil {
			return fmt.Errorf("listen on -debug-addr: %w", err)
		}
		debug := &http.Server{Handler: http.DefaultServeMux, ReadHeaderTimeout: 5 * time.Second}
		go debug.Serve(dln)
		defer debug.Close()
		logger.Info("profiler listening", "addr", dln.Addr().String())
	}
	if cfg.metricsAddr != "" && cfg.metricsAddr != "off" {
		mln, err := net.Listen("tcp", cfg.metricsAddr)
		if err != nil {
			return fmt.Errorf("listen on -metrics-addr: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", metrics.Handler())
		msrv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go msrv.Serve(mln)
		defer msrv.Close()
		logger.Info("metrics listening", "addr", mln.Addr().String())
	}
	maxConns, err := connCap(cfg, logger)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	limited := limitConns(ln, maxConns)
	srv.ConnState = limited.connState
	logger.Info("listening", "addr", ln.Addr().String(), "db", store.RedactDSN(cfg.db), "max_conns", maxConns)

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
	if err := db.Close(); err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	logger.Info("stopped")
	return nil
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
