package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gaas-io/gaas/gaas"
)

// allocations is "gaasd allocations VERB": credits given to a user for a
// time, and for some GPU types or all.
func (c *adminCmd) allocations(ctx context.Context, verb string, args []string) error {
	switch verb {
	case "list":
		owner := c.fs.String("user", "", "the `user` whose allocations to list, by name or id (required)")
		ended := c.fs.Bool("ended", false, "list ended allocations too")
		return c.run(ctx, args, 0, func() error { return c.allocationsList(ctx, *owner, *ended) })
	case "add":
		var req gaas.CreateAllocationRequest
		owner := c.fs.String("user", "", "the `user` to give it to, by name or id (required)")
		settle := c.allocationFlags(&req)
		return c.run(ctx, args, 0, func() error {
			if *owner == "" || !c.given("amount") {
				return fmt.Errorf("%w: -user and -amount are required", errUsage)
			}
			if err := settle(); err != nil {
				return err
			}
			return c.allocationAdd(ctx, *owner, req)
		})
	case "end":
		reason := c.fs.String("reason", "", "why, recorded in the ledger with the credits taken back")
		return c.run(ctx, args, 1, func() error {
			return c.allocationUpdate(ctx, gaas.UpdateAllocationRequest{End: true, Reason: *reason})
		})
	default: // shorten
		var req gaas.UpdateAllocationRequest
		c.fs.Func("expires", "its new end, RFC 3339, earlier than its end (required)", timeFlag(func(t time.Time) { req.ExpiresAt = &t }))
		c.fs.StringVar(&req.Reason, "reason", "", "why, recorded in the ledger when the new end has passed and credits are taken back")
		return c.run(ctx, args, 1, func() error {
			if req.ExpiresAt == nil {
				return fmt.Errorf("%w: -expires is required", errUsage)
			}
			return c.allocationUpdate(ctx, req)
		})
	}
}

// allocationFlags defines the flags of a new allocation, which fill req:
// -amount, -gpu-types, -starts, -expires or -for, and -reason. The
// function it returns, called after parsing, works out the end that -for
// gives, or returns a usage error.
func (c *adminCmd) allocationFlags(req *gaas.CreateAllocationRequest) func() error {
	var lasts time.Duration
	c.fs.Func("amount", "its `credits` (required)", creditsFlag(func(a gaas.Credits) { req.Amount = a }))
	c.fs.Func("gpu-types", "the GPU `types` it pays for, comma separated, such as A100,H100; every type when not given",
		listFlag(func(types []string) { req.GPUTypes = types }))
	c.fs.Func("starts", "when it starts, RFC 3339 such as 2026-12-01T00:00:00Z; now when not given",
		timeFlag(func(t time.Time) { req.StartsAt = t }))
	c.fs.Func("expires", "when it ends, RFC 3339; it never ends when neither this nor -for is given",
		timeFlag(func(t time.Time) { req.ExpiresAt = &t }))
	c.fs.Func("for", "how long it lasts from its start, such as 720h; instead of -expires", func(s string) (err error) {
		if lasts, err = time.ParseDuration(s); err == nil && lasts <= 0 {
			err = errors.New("must be a positive duration")
		}
		return err
	})
	c.fs.StringVar(&req.Reason, "reason", "", "why, recorded with it and in the ledger")
	return func() error {
		switch {
		case lasts != 0 && req.ExpiresAt != nil:
			return fmt.Errorf("%w: give -expires or -for, not both", errUsage)
		case lasts != 0:
			start := req.StartsAt
			if start.IsZero() {
				start = time.Now()
			}
			end := start.Add(lasts)
			req.ExpiresAt = &end
		}
		return nil
	}
}

// creditsFlag parses a flag of credits and gives it to set.
func creditsFlag(set func(gaas.Credits)) func(string) error {
	return func(s string) error {
		c, err := gaas.ParseCredits(s)
		set(c)
		return err
	}
}

// listFlag parses a comma-separated flag, such as A100,H100, and gives
// the trimmed names to set.
func listFlag(set func([]string)) func(string) error {
	return func(s string) error {
		names := strings.Split(s, ",")
		for i := range names {
			names[i] = strings.TrimSpace(names[i])
		}
		set(names)
		return nil
	}
}

// timeFlag parses a flag of an RFC 3339 time and gives it to set.
func timeFlag(set func(time.Time)) func(string) error {
	return func(s string) error {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return errors.New("must be an RFC 3339 time such as 2026-12-01T00:00:00Z")
		}
		set(t)
		return nil
	}
}

// userByNameOrID finds a user by name in any letter case or, when no
// user has that name and it is a number, by id.
func (c *adminCmd) userByNameOrID(ctx context.Context, s string) (gaas.User, error) {
	u, err := c.userByName(ctx, s)
	id, nerr := strconv.ParseInt(s, 10, 64)
	if !errors.Is(err, gaas.ErrNotFound) || nerr != nil {
		return u, err
	}
	u, err = c.database.As(c.actor).User(ctx, gaas.GetUserRequest{UserID: id})
	if errors.Is(err, gaas.ErrNotFound) {
		return u, fmt.Errorf("no user named or numbered %q: %w", s, gaas.ErrNotFound)
	}
	return u, err
}

// allocationJSON is an allocation as -json prints it.
type allocationJSON struct {
	ID        int64      `json:"id"`
	Amount    string     `json:"amount"`
	Remaining string     `json:"remaining"`
	GPUTypes  []string   `json:"gpu_types"`
	StartsAt  time.Time  `json:"starts_at"`
	ExpiresAt *time.Time `json:"expires_at"`
	Default   bool       `json:"default"`
	State     string     `json:"state"`
	Reason    string     `json:"reason"`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
}

// allocationState says whether a pays for jobs at now: "active", "not
// started" or "ended".
func allocationState(a gaas.Allocation, now time.Time) string {
	switch {
	case a.ActiveAt(now):
		return "active"
	case now.Before(a.StartsAt):
		return "not started"
	}
	return "ended"
}

func toAllocationJSON(a gaas.Allocation, now time.Time) allocationJSON {
	return allocationJSON{a.ID, a.Amount.String(), a.Remaining.String(), a.GPUTypes, a.StartsAt, a.ExpiresAt, a.Default,
		allocationState(a, now), a.Reason, actorName(a.CreatedByID, a.CreatedBySystem), a.CreatedAt}
}

// actorName is who made a change: "user ID", or the system's name.
func actorName(userID int64, system string) string {
	if userID != 0 {
		return fmt.Sprintf("user %d", userID)
	}
	return system
}

func (c *adminCmd) printAllocations(allocs []gaas.Allocation) error {
	now := time.Now()
	toJSON := func(a gaas.Allocation) allocationJSON { return toAllocationJSON(a, now) }
	return printRows(c, allocs, toJSON, "ID\tAMOUNT\tREMAINING\tSCOPE\tSTARTS\tEXPIRES\tSTATE\tCREATOR\tREASON", func(a gaas.Allocation) string {
		scope := "all"
		if a.GPUTypes != nil {
			scope = strings.Join(a.GPUTypes, ",")
		}
		expires := "-"
		if a.ExpiresAt != nil {
			expires = a.ExpiresAt.Format(time.RFC3339)
		}
		state := allocationState(a, now)
		if a.Default {
			state += " (default)"
		}
		return fmt.Sprintf("%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%q", a.ID, a.Amount, a.Remaining, scope, a.StartsAt.Format(time.RFC3339),
			expires, state, actorName(a.CreatedByID, a.CreatedBySystem), a.Reason)
	})
}

func (c *adminCmd) printAllocation(a gaas.Allocation) error {
	if *c.asJSON {
		return c.printJSON(toAllocationJSON(a, time.Now()))
	}
	return c.printAllocations([]gaas.Allocation{a})
}

func (c *adminCmd) allocationsList(ctx context.Context, owner string, ended bool) error {
	if owner == "" {
		return fmt.Errorf("%w: -user is required", errUsage)
	}
	u, err := c.userByNameOrID(ctx, owner)
	if err != nil {
		return err
	}
	allocs, err := c.allAllocations(ctx, gaas.AllocationsRequest{UserID: u.ID, Ended: ended})
	if err != nil {
		return err
	}
	return c.printAllocations(allocs)
}

// allAllocations lists every allocation req asks for, page by page.
func (c *adminCmd) allAllocations(ctx context.Context, req gaas.AllocationsRequest) ([]gaas.Allocation, error) {
	return everyPage(func(cursor string) ([]gaas.Allocation, string, error) {
		req.Page = gaas.Page{Limit: gaas.MaxLimit, Cursor: cursor}
		page, err := c.database.As(c.actor).Allocations(ctx, req)
		return page.Items, page.NextCursor, err
	})
}

func (c *adminCmd) allocationAdd(ctx context.Context, owner string, req gaas.CreateAllocationRequest) error {
	u, err := c.userByNameOrID(ctx, owner)
	if err != nil {
		return err
	}
	req.UserID = u.ID
	a, err := c.database.As(c.actor).CreateAllocation(ctx, req)
	if err != nil {
		return err
	}
	return c.printAllocation(a)
}

// allocationUpdate ends or shortens the allocation the argument numbers.
func (c *adminCmd) allocationUpdate(ctx context.Context, req gaas.UpdateAllocationRequest) error {
	id, err := strconv.ParseInt(c.args[0], 10, 64)
	if err != nil || id <= 0 {
		return fmt.Errorf("%w: ID must be an allocation's number, not %q", errUsage, c.args[0])
	}
	req.AllocationID = id
	a, err := c.database.As(c.actor).UpdateAllocation(ctx, req)
	if err != nil {
		return err
	}
	return c.printAllocation(a)
}
