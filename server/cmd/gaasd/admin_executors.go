package main

import (
	"context"
	"fmt"
	"time"

	"github.com/gaas-io/gaas/gaas"
)

// executors is "gaasd executors VERB": the accounts of executors on other
// machines (gaas-runner).
func (c *adminCmd) executors(ctx context.Context, verb string, args []string) error {
	switch verb {
	case "add":
		return c.run(ctx, args, 1, func() error { return c.executorAdd(ctx) })
	case "list":
		return c.run(ctx, args, 0, func() error { return c.executorList(ctx) })
	default: // revoke
		return c.run(ctx, args, 1, func() error { return c.executorRevoke(ctx) })
	}
}

// executorJSON is an executor as -json prints it; the token only when it
// was just made.
type executorJSON struct {
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	LastSeenAt *time.Time `json:"last_seen_at"`
	Token      string     `json:"token,omitempty"`
}

func toExecutorJSON(x gaas.ExecutorAccount) executorJSON {
	return executorJSON{Name: x.Name, CreatedAt: x.CreatedAt, RevokedAt: x.RevokedAt, LastSeenAt: x.LastSeenAt}
}

// executorAdd prints the new executor's token, and only that, so that a
// script can take it (TOKEN=$(gaasd executors add node1)); it is shown
// this once.
func (c *adminCmd) executorAdd(ctx context.Context) error {
	x, token, err := c.database.As(c.actor).CreateExecutor(ctx, c.args[0])
	if err != nil {
		return err
	}
	if *c.asJSON {
		out := toExecutorJSON(x)
		out.Token = token
		return c.printJSON(out)
	}
	_, err = fmt.Fprintln(c.stdout, token)
	return err
}

func (c *adminCmd) printExecutors(xs []gaas.ExecutorAccount) error {
	at := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.Format(time.RFC3339)
	}
	return printRows(c, xs, toExecutorJSON, "NAME\tCREATED\tLAST_SEEN\tREVOKED", func(x gaas.ExecutorAccount) string {
		return fmt.Sprintf("%s\t%s\t%s\t%s", x.Name, x.CreatedAt.Format(time.RFC3339), at(x.LastSeenAt), at(x.RevokedAt))
	})
}

func (c *adminCmd) executorList(ctx context.Context) error {
	xs, err := c.database.As(c.actor).Executors(ctx)
	if err != nil {
		return err
	}
	return c.printExecutors(xs)
}

func (c *adminCmd) executorRevoke(ctx context.Context) error {
	x, err := c.database.As(c.actor).RevokeExecutor(ctx, c.args[0])
	if err != nil {
		return err
	}
	if *c.asJSON {
		return c.printJSON(toExecutorJSON(x))
	}
	return c.printExecutors([]gaas.ExecutorAccount{x})
}
