// Package slurm runs gaas jobs on a Slurm cluster through the commands
// every Slurm portal uses: sbatch to submit, one squeue --json a cycle to
// watch, sacct to read how a job ended, scancel to stop one. gaas stays the
// one ledger: Slurm is told nothing of balances, only each job's GPUs and
// time limit.
//
// Without slurmdbd, sacct reads the completion log (JobCompType=
// jobcomp/filetxt) with -c; [Config.Completions] chooses that.
package slurm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gaas-io/gaas/gaas"
)

// Config says how to reach the cluster and how to run jobs on it.
type Config struct {
	// Bin is the directory holding sbatch, squeue, sacct and scancel; empty
	// finds them on PATH.
	Bin string
	// Env is added to the commands' environment (SLURM_CONF=...). sbatch
	// passes its environment on to the job, whose command is a user's, so
	// it gets only PATH, SLURM_CONF and Env of this process's.
	Env []string
	// Partition the jobs go to; empty is the cluster's default.
	Partition string
	// GRES maps a GPU type of the catalogue, in any case, to its Slurm GRES type; a type
	// it does not name is its own GRES type; a name that is not one
	// (letters, digits, "_", "-", ".") refuses the job.
	GRES map[string]string
	// User is who the jobs run as (sbatch --uid and --gid of the user's
	// group, which takes a submitter that is root). Empty runs them as the
	// submitting user, except that root's jobs run as "nobody": commands
	// are user input.
	User string
	// LogDir is where each job writes its output, as LogDir/<name>.log; the
	// nodes must reach it and the job's user write there. Empty is the
	// jobs' working directory as Slurm chooses it.
	LogDir string
	// Prefix begins the name of every job submitted, followed by the job's
	// id: "gaas-" when empty. Jobs of other names are not this cluster's.
	Prefix string
	// Completions makes sacct read the completion log (sacct -c) instead
	// of slurmdbd: for clusters with JobCompType=jobcomp/filetxt and no
	// accounting database.
	Completions bool
	// Timeout bounds each command; 0 means 30 seconds.
	Timeout time.Duration
}

// Cluster submits, watches and cancels jobs with Slurm's commands.
type Cluster struct {
	cfg   Config
	runAs []string // sbatch's --uid and --gid, if any
	// owner is the uid this cluster's jobs run as: squeue lists everyone's
	// jobs, and one of another user's named like ours is not ours.
	owner int64
}

// New checks cfg and resolves the user jobs run as.
func New(cfg Config) (*Cluster, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "gaas-"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	for t, g := range cfg.GRES {
		if !gresType(g) {
			return nil, fmt.Errorf("slurm: GPU type %s: %q is not a GRES type (letters, digits, '_', '-' and '.')", t, g)
		}
	}
	c := &Cluster{cfg: cfg}
	name := cfg.User
	if name == "" && os.Geteuid() == 0 {
		name = "nobody"
	}
	if name != "" {
		u, err := user.Lookup(name)
		if err != nil {
			return nil, fmt.Errorf("slurm: the user jobs run as: %w", err)
		}
		c.runAs = []string{"--uid=" + u.Uid, "--gid=" + u.Gid}
		if c.owner, err = strconv.ParseInt(u.Uid, 10, 64); err != nil {
			return nil, fmt.Errorf("slurm: the user jobs run as has uid %q: %w", u.Uid, err)
		}
	} else {
		c.owner = int64(os.Geteuid())
	}
	return c, nil
}

// Job is what Submit needs of a gaas job.
type Job struct {
	ID       int64
	Command  string
	GPUType  string
	GPUs     int
	Estimate gaas.Hours // the time limit is the estimate, in whole minutes
}

// Name is the Slurm name of the job with gaas id id.
func (c *Cluster) Name(id int64) string { return c.cfg.Prefix + strconv.FormatInt(id, 10) }

// LogPath is where the job with gaas id id writes its output, when
// Config.LogDir is set.
func (c *Cluster) LogPath(id int64) string {
	if c.cfg.LogDir == "" {
		return ""
	}
	return filepath.Join(c.cfg.LogDir, c.Name(id)+".log")
}

// RefusedError is a submission that the cluster refused for good: the
// GPUs asked for do not exist there, or never all at once. Submitting the
// job again would be refused again.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return "slurm refused the job: " + e.Reason }

// Submit hands the job to sbatch and returns Slurm's job id. The command
// runs under /bin/sh as the job script's only line, so nothing in it is
// read as an #SBATCH directive.
func (c *Cluster) Submit(ctx context.Context, j Job) (string, error) {
	gres := j.GPUType
	for t, g := range c.cfg.GRES {
		if gaas.SameGPUType(t, j.GPUType) { // the job has the catalogue's spelling
			gres = g
			break
		}
	}
	if !gresType(gres) {
		// In open mode the type is the user's: "a100:1,gpu:h100" would
		// ask for GPUs that are not charged.
		return "", &RefusedError{Reason: fmt.Sprintf("%q is not a GRES type (letters, digits, '_', '-' and '.')", gres)}
	}
	minutes := int64(gaas.TimeLimit(j.Estimate) / time.Minute)
	args := []string{"--parsable", "--job-name=" + c.Name(j.ID),
		fmt.Sprintf("--gres=gpu:%s:%d", gres, max(j.GPUs, 1)),
		"--time=" + strconv.FormatInt(max(minutes, 1), 10), "--no-requeue"}
	if c.cfg.Partition != "" {
		args = append(args, "--partition="+c.cfg.Partition)
	}
	if c.cfg.LogDir != "" {
		args = append(args, "--output="+c.LogPath(j.ID), "--chdir="+c.cfg.LogDir)
	}
	args = append(args, c.runAs...)
	script := "#!/bin/sh\nexec /bin/sh -c " + shellQuote(j.Command) + "\n"
	out, err := c.run(ctx, "sbatch", strings.NewReader(script), args...)
	if err != nil {
		if reason, ok := strings.CutPrefix(err.Error(), "slurm: sbatch: sbatch: error: Batch job submission failed: "); ok && !transient(reason) {
			return "", &RefusedError{Reason: reason}
		}
		return "", err
	}
	id, _, _ := strings.Cut(strings.TrimSpace(string(out)), ";") // "id;cluster" on a federation
	if _, err := strconv.ParseUint(id, 10, 64); err != nil {
		return "", fmt.Errorf("slurm: sbatch answered %q, not a job id", out)
	}
	return id, nil
}

// gresType reports whether s is a name --gres=gpu:s:n reads as a type and
// nothing more.
func gresType(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '-' {
		return false
	}
	for _, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// transient says whether a refusal of sbatch is the cluster being out of
// reach, not the job being impossible.
func transient(reason string) bool {
	for _, s := range []string{"Unable to contact", "Socket timed out", "temporarily unavailable", "Slurm controller not responding", "Resource temporarily"} {
		if strings.Contains(reason, s) {
			return true
		}
	}
	return false
}

// shellQuote is s as one single-quoted word of the POSIX shell.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// Cancel asks Slurm to stop the job: a job that has not started never
// will, a running one gets SIGTERM, and SIGKILL after the cluster's
// KillWait. Cancelling a job that already ended is no error.
func (c *Cluster) Cancel(ctx context.Context, slurmID string) error {
	_, err := c.run(ctx, "scancel", nil, slurmID)
	if err != nil && strings.Contains(err.Error(), "Job has already finished") {
		return nil
	}
	return err
}

// State is a job as squeue shows it.
type State struct {
	SlurmID string
	JobID   int64 // gaas's
	// State is Slurm's job state: PENDING, RUNNING, COMPLETED, TIMEOUT, ...
	State string
	// Start is when the job started; zero if it has not.
	Start time.Time
	// End is when it ended, if it has.
	End time.Time
}

// Queue lists this cluster's jobs that squeue knows of, in one squeue
// --json: those waiting and running, and those that ended within the
// cluster's MinJobAge.
func (c *Cluster) Queue(ctx context.Context) ([]State, error) {
	out, err := c.run(ctx, "squeue", nil, "--json")
	if err != nil {
		return nil, err
	}
	var q struct {
		Jobs []struct {
			JobID     int64      `json:"job_id"`
			Name      string     `json:"name"`
			JobState  jobState   `json:"job_state"`
			StartTime squeueTime `json:"start_time"`
			EndTime   squeueTime `json:"end_time"`
			Nodes     string     `json:"nodes"`
			UserID    *int64     `json:"user_id"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal(out, &q); err != nil {
		return nil, fmt.Errorf("slurm: squeue --json: %w", err)
	}
	var states []State
	for _, j := range q.Jobs {
		id, ok := c.jobID(j.Name)
		if !ok || (j.UserID != nil && *j.UserID != c.owner) {
			continue
		}
		state := string(j.JobState)
		s := State{SlurmID: strconv.FormatInt(j.JobID, 10), JobID: id, State: state}
		if (Started(state) || Final(state) && assigned(j.Nodes)) && j.StartTime > 0 {
			s.Start = time.Unix(int64(j.StartTime), 0)
		}
		if Final(state) && j.EndTime > 0 {
			s.End = time.Unix(int64(j.EndTime), 0)
		}
		states = append(states, s)
	}
	return states, nil
}

// jobState is a job's state in squeue --json: a string up to Slurm 22.05,
// a list of the state and its flags since 23.02, read as the words of a
// string.
type jobState string

func (s *jobState) UnmarshalJSON(b []byte) error {
	var words []string
	if err := json.Unmarshal(b, &words); err == nil {
		*s = jobState(strings.Join(words, " "))
		return nil
	}
	return json.Unmarshal(b, (*string)(s))
}

// squeueTime is a time in squeue --json, in Unix seconds: a number up to
// Slurm 22.05, since 23.02 an object whose number counts only when set
// and not infinite; 0 when unset.
type squeueTime int64

func (t *squeueTime) UnmarshalJSON(b []byte) error {
	var v struct {
		Set, Infinite bool
		Number        int64
	}
	if err := json.Unmarshal(b, &v); err == nil {
		if v.Set && !v.Infinite {
			*t = squeueTime(v.Number)
		}
		return nil
	}
	return json.Unmarshal(b, (*int64)(t))
}

// assigned reports whether a job's node list names nodes: whether it was
// given any, and so started. A job cancelled while it waited has a start
// time (its end), but no nodes.
func assigned(nodes string) bool {
	return nodes != "" && nodes != "(null)" && nodes != "None assigned"
}

// jobID is the gaas id in a job name of this cluster's.
func (c *Cluster) jobID(name string) (int64, bool) {
	rest, ok := strings.CutPrefix(name, c.cfg.Prefix)
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	return id, err == nil && id > 0
}

// Record is how a job ended, as sacct tells it.
type Record struct {
	SlurmID string
	State   string
	// Elapsed is the time it ran.
	Elapsed time.Duration
	// Exit is its exit code; Signal the signal that ended it, if one did.
	Exit, Signal int
	Started      bool
}

// Outcome is what the record means for gaas.
func (r Record) Outcome() gaas.Outcome {
	o := OutcomeOf(r.State, r.Started, r.Elapsed)
	if r.Signal == 0 && o.Status != gaas.StatusCancelled {
		exit := r.Exit
		o.ExitCode = &exit
		if r.Exit != 0 && o.Reason == "FAILED" {
			o.Reason = fmt.Sprintf("FAILED: exit status %d", r.Exit)
		}
	} else if r.Signal != 0 {
		o.Reason += fmt.Sprintf(": signal %d", r.Signal)
	}
	return o
}

// Accounting reads how the jobs slurmIDs ended, those submitted since
// since. A job that sacct does not know yet is missing from the answer:
// Slurm writes a job's record some seconds after squeue shows it ended, so
// ask again later.
func (c *Cluster) Accounting(ctx context.Context, since time.Time, slurmIDs []string) (map[string]Record, error) {
	if len(slurmIDs) == 0 {
		return nil, nil
	}
	args := []string{"--parsable2", "--noheader", "--allusers", "-X",
		"--format=JobID,State,ExitCode,ElapsedRaw,NodeList",
		"--starttime=" + since.Local().Format("2006-01-02T15:04:05"),
		"--jobs=" + strings.Join(slurmIDs, ",")}
	if c.cfg.Completions {
		args = append([]string{"-c"}, args...)
	}
	out, err := c.run(ctx, "sacct", nil, args...)
	if err != nil {
		return nil, err
	}
	recs := make(map[string]Record)
	for line := range strings.Lines(string(out)) {
		f := strings.Split(strings.TrimRight(line, "\n"), "|")
		if len(f) != 5 {
			continue
		}
		r := Record{SlurmID: f[0], State: f[1]}
		if !Final(r.State) {
			continue // sacct also lists jobs still running
		}
		code, sig, _ := strings.Cut(f[2], ":")
		r.Exit, _ = strconv.Atoi(code)
		r.Signal, _ = strconv.Atoi(sig)
		secs, _ := strconv.ParseInt(f[3], 10, 64)
		r.Elapsed = time.Duration(secs) * time.Second
		r.Started = secs > 0 || assigned(f[4])
		recs[r.SlurmID] = r
	}
	return recs, nil
}

// run runs one of Slurm's commands and returns its standard output; a
// failure's error holds the first line of what it wrote to standard error.
func (c *Cluster) run(ctx context.Context, name string, stdin *strings.Reader, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	path := name
	if c.cfg.Bin != "" {
		path = filepath.Join(c.cfg.Bin, name)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = os.Environ()
	if name == "sbatch" {
		// The job gets sbatch's environment: none of this process's secrets.
		cmd.Env = nil
		for _, k := range []string{"PATH", "SLURM_CONF"} {
			if v, ok := os.LookupEnv(k); ok {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
		}
	}
	cmd.Env = append(cmd.Env, c.cfg.Env...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg, _, _ := strings.Cut(strings.TrimSpace(stderr.String()), "\n")
		if msg == "" {
			msg = err.Error()
		}
		if ctx.Err() != nil {
			msg = "timed out after " + c.cfg.Timeout.String()
		}
		return nil, fmt.Errorf("slurm: %s: %s", name, msg)
	}
	return stdout.Bytes(), nil
}
