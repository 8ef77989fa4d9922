package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gaas-io/gaas/gaas"
)

// schedules is "gaasd schedules VERB": recurring allocations of users
// and projects.
func (c *adminCmd) schedules(ctx context.Context, verb string, args []string) error {
	switch verb {
	case "list":
		owner := c.fs.String("user", "", "list only this `user`'s schedules, by name or id")
		project := c.fs.String("project", "", "list only this `project`'s schedules, by name or id")
		return c.run(ctx, args, 0, func() error { return c.schedulesList(ctx, *owner, *project) })
	case "add":
		var req gaas.CreateScheduleRequest
		owner := c.fs.String("user", "", "the `user` to give to, by name or id (this or -project is required)")
		project := c.fs.String("project", "", "the `project` to give to, by name or id")
		c.fs.Func("amount", "the `credits` of each period (required)", creditsFlag(func(a gaas.Credits) { req.Amount = a }))
		c.fs.StringVar((*string)(&req.Period), "period", "", "daily, weekly, monthly, quarterly or yearly (required)")
		c.fs.Func("gpu-types", "the GPU `types` its allocations pay for, comma separated; every type when not given",
			listFlag(func(types []string) { req.GPUTypes = types }))
		c.fs.Func("starts", "when the first period begins, RFC 3339; now when not given", timeFlag(func(t time.Time) { req.StartsAt = t }))
		c.fs.StringVar(&req.TimeZone, "time-zone", "UTC", "the IANA time `zone` its periods follow, such as Europe/Berlin")
		c.fs.Func("rollover-cap", "roll what is left at a period's end into the next, up to these `credits`; it expires when not given",
			creditsFlag(func(a gaas.Credits) { req.RolloverCap, req.Leftover = a, gaas.LeftoverRollover }))
		c.fs.BoolVar(&req.GrantCurrent, "grant-current", false, "give the period under way now, when -starts is past")
		c.fs.StringVar(&req.Reason, "reason", "", "why, recorded with it")
		return c.run(ctx, args, 0, func() error {
			if (*owner == "") == (*project == "") || !c.given("amount") || req.Period == "" {
				return fmt.Errorf("%w: -user or -project (one of them), -amount and -period are required", errUsage)
			}
			return c.scheduleAdd(ctx, *owner, *project, req)
		})
	default: // pause, resume, end
		req := gaas.UpdateScheduleRequest{End: verb == "end"}
		if !req.End {
			paused := verb == "pause"
			req.Paused = &paused
		}
		return c.run(ctx, args, 1, func() error {
			id, err := strconv.ParseInt(c.args[0], 10, 64)
			if err != nil || id <= 0 {
				return fmt.Errorf("%w: ID must be a schedule's number, not %q", errUsage, c.args[0])
			}
			req.ScheduleID = id
			s, err := c.database.As(c.actor).UpdateSchedule(ctx, req)
			if err != nil {
				return err
			}
			return c.printSchedule(s)
		})
	}
}

// scheduleAccountOf fills in the user or project that owner or project names.
func (c *adminCmd) scheduleAccountOf(ctx context.Context, owner, project string) (userID, projectID int64, err error) {
	switch {
	case owner != "":
		u, err := c.userByNameOrID(ctx, owner)
		return u.ID, 0, err
	case project != "":
		p, err := c.project(ctx, project)
		return 0, p.ID, err
	}
	return 0, 0, nil
}

func (c *adminCmd) scheduleAdd(ctx context.Context, owner, project string, req gaas.CreateScheduleRequest) error {
	var err error
	if req.UserID, req.ProjectID, err = c.scheduleAccountOf(ctx, owner, project); err != nil {
		return err
	}
	s, err := c.database.As(c.actor).CreateSchedule(ctx, req)
	if err != nil {
		return err
	}
	return c.printSchedule(s)
}

func (c *adminCmd) schedulesList(ctx context.Context, owner, project string) error {
	if owner != "" && project != "" {
		return fmt.Errorf("%w: give -user or -project, not both", errUsage)
	}
	var req gaas.SchedulesRequest
	var err error
	if req.UserID, req.ProjectID, err = c.scheduleAccountOf(ctx, owner, project); err != nil {
		return err
	}
	all, err := everyPage(func(cursor string) ([]gaas.Schedule, string, error) {
		req.Page = gaas.Page{Limit: gaas.MaxLimit, Cursor: cursor}
		page, err := c.database.As(c.actor).Schedules(ctx, req)
		return page.Items, page.NextCursor, err
	})
	if err != nil {
		return err
	}
	return c.printSchedules(all)
}

// scheduleJSON is a schedule as -json prints it.
type scheduleJSON struct {
	ID              int64      `json:"id"`
	Holder          string     `json:"holder"`
	Amount          string     `json:"amount"`
	GPUTypes        []string   `json:"gpu_types"`
	Period          string     `json:"period"`
	StartsAt        time.Time  `json:"starts_at"`
	TimeZone        string     `json:"time_zone"`
	Leftover        string     `json:"leftover"`
	RolloverCap     string     `json:"rollover_cap,omitempty"`
	State           string     `json:"state"`
	EndedAt         *time.Time `json:"ended_at"`
	NextPeriodStart time.Time  `json:"next_period_start"`
	Reason          string     `json:"reason"`
	CreatedBy       string     `json:"created_by"`
}

// scheduleHolder is "user ID" or "project ID".
func scheduleHolder(s gaas.Schedule) string {
	if s.ProjectID != 0 {
		return fmt.Sprintf("project %d", s.ProjectID)
	}
	return fmt.Sprintf("user %d", s.UserID)
}

// scheduleState is "active", "paused" or "ended".
func scheduleState(s gaas.Schedule) string {
	switch {
	case s.EndedAt != nil:
		return "ended"
	case s.Paused:
		return "paused"
	}
	return "active"
}

func toScheduleJSON(s gaas.Schedule) scheduleJSON {
	out := scheduleJSON{ID: s.ID, Holder: scheduleHolder(s), Amount: s.Amount.String(), GPUTypes: s.GPUTypes, Period: string(s.Period),
		StartsAt: s.StartsAt, TimeZone: s.TimeZone, Leftover: string(s.Leftover), State: scheduleState(s), EndedAt: s.EndedAt,
		NextPeriodStart: s.NextPeriod.Start, Reason: s.Reason, CreatedBy: actorName(s.CreatedByID, s.CreatedBySystem)}
	if s.Leftover == gaas.LeftoverRollover {
		out.RolloverCap = s.RolloverCap.String()
	}
	return out
}

func (c *adminCmd) printSchedules(all []gaas.Schedule) error {
	return printRows(c, all, toScheduleJSON, "ID\tHOLDER\tAMOUNT\tPERIOD\tSCOPE\tLEFTOVER\tNEXT\tSTATE\tCREATOR\tREASON", func(s gaas.Schedule) string {
		scope := "all"
		if s.GPUTypes != nil {
			scope = strings.Join(s.GPUTypes, ",")
		}
		leftover := string(s.Leftover)
		if s.Leftover == gaas.LeftoverRollover {
			leftover += " up to " + s.RolloverCap.String()
		}
		loc := s.Recurrence().Location
		return fmt.Sprintf("%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%q", s.ID, scheduleHolder(s), s.Amount, s.Period, scope, leftover,
			s.NextPeriod.Start.In(loc).Format(time.RFC3339), scheduleState(s), actorName(s.CreatedByID, s.CreatedBySystem), s.Reason)
	})
}

func (c *adminCmd) printSchedule(s gaas.Schedule) error {
	if *c.asJSON {
		return c.printJSON(toScheduleJSON(s))
	}
	return c.printSchedules([]gaas.Schedule{s})
}
