package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/gaas-io/gaas/gaas"
)

// projects is "gaasd project VERB": projects, their members and their
// allocations. PROJECT is a project's name or id.
func (c *adminCmd) projects(ctx context.Context, verb string, args []string) error {
	switch verb {
	case "add":
		var req gaas.CreateProjectRequest
		parent := c.fs.String("parent", "", "the `project` above it, by name or id; none when not given")
		c.fs.StringVar(&req.Name, "name", "", "its `name`, 1 to 64 of A-Z a-z 0-9 _ . - and not all digits (required)")
		c.fs.StringVar(&req.Description, "description", "", "what it is, for its members")
		c.fs.Func("cap", "the most `credits` it and its sub-projects may have spent; no cap when not given",
			creditsFlag(func(cr gaas.Credits) { req.Cap = &cr }))
		c.fs.BoolVar(&req.ManagersApprove, "managers-approve", false, "its managers' approval of its jobs is enough; else only admins approve them")
		c.fs.BoolVar(&req.AutoApprove, "auto-approve", false, "its jobs are APPROVED when submitted, for an executor to run without anyone's approval")
		return c.run(ctx, args, 0, func() error {
			if req.Name == "" {
				return fmt.Errorf("%w: -name is required", errUsage)
			}
			return c.projectAdd(ctx, *parent, req)
		})
	case "list":
		return c.run(ctx, args, 0, func() error { return c.projectList(ctx) })
	case "show":
		return c.run(ctx, args, 1, func() error { return c.projectShow(ctx) })
	case "member":
		var req gaas.SetMemberRequest
		user := c.fs.String("user", "", "the `user`, by name or id (required)")
		role := c.fs.String("role", "", "their `role`: manager or member (required unless -remove)")
		c.fs.Func("limit", "the most `credits` they may have spent from the project; no limit when not given",
			creditsFlag(func(cr gaas.Credits) { req.Limit = &cr }))
		c.fs.Func("gpu-types", "the only GPU `types` they may use from the project, comma separated; every type when not given",
			listFlag(func(types []string) { req.GPUTypes = types }))
		remove := c.fs.Bool("remove", false, "take them out of the project; their jobs stay the project's")
		return c.run(ctx, args, 1, func() error {
			switch {
			case *user == "":
				return fmt.Errorf("%w: -user is required", errUsage)
			case *remove && (*role != "" || c.given("limit") || c.given("gpu-types")):
				return fmt.Errorf("%w: -remove takes no -role, -limit or -gpu-types", errUsage)
			case *remove:
				return c.memberChange(ctx, *user, nil)
			case !gaas.ProjectRole(*role).Valid():
				return fmt.Errorf("%w: -role must be %s or %s", errUsage, gaas.ProjectManager, gaas.ProjectMember)
			}
			req.Role = gaas.ProjectRole(*role)
			return c.memberChange(ctx, *user, &req)
		})
	case "grant":
		var req gaas.CreateAllocationRequest
		settle := c.allocationFlags(&req)
		return c.run(ctx, args, 1, func() error {
			if !c.given("amount") {
				return fmt.Errorf("%w: -amount is required", errUsage)
			}
			if err := settle(); err != nil {
				return err
			}
			return c.projectGrant(ctx, req)
		})
	case "set":
		var req gaas.UpdateProjectRequest
		c.fs.Func("cap", "its new cap, in `credits`", creditsFlag(func(cr gaas.Credits) { req.SetCap, req.Cap = true, &cr }))
		noCap := c.fs.Bool("no-cap", false, "remove its cap")
		c.fs.Func("description", "its new description", func(s string) error { req.Description = &s; return nil })
		managers := c.fs.Bool("managers-approve", false, "whether its managers' approval of its jobs is enough: -managers-approve=true or =false")
		auto := c.fs.Bool("auto-approve", false, "whether its jobs are APPROVED when submitted: -auto-approve=true or =false")
		return c.run(ctx, args, 1, func() error {
			if *noCap && req.SetCap {
				return fmt.Errorf("%w: give -cap or -no-cap, not both", errUsage)
			}
			if *noCap {
				req.SetCap = true
			}
			if c.given("managers-approve") {
				req.ManagersApprove = managers
			}
			if c.given("auto-approve") {
				req.AutoApprove = auto
			}
			if !req.SetCap && req.Description == nil && req.ManagersApprove == nil && req.AutoApprove == nil {
				return fmt.Errorf("%w: nothing to change: give -cap, -no-cap, -description, -managers-approve or -auto-approve", errUsage)
			}
			return c.projectSet(ctx, req)
		})
	default: // transfer
		var req gaas.TransferRequest
		to := c.fs.String("to", "", "the sub-project that receives them, by name or id (required)")
		c.fs.Func("amount", "how many `credits` (required)", creditsFlag(func(cr gaas.Credits) { req.Amount = cr }))
		c.fs.Func("expires", "when the new allocation ends, RFC 3339; never when not given", timeFlag(func(t time.Time) { req.ExpiresAt = &t }))
		c.fs.StringVar(&req.Reason, "reason", "", "why, recorded with the new allocation and in both ledgers")
		return c.run(ctx, args, 1, func() error {
			if *to == "" || !c.given("amount") {
				return fmt.Errorf("%w: -to and -amount are required", errUsage)
			}
			return c.projectTransfer(ctx, *to, req)
		})
	}
}

// project finds the project ref names, by name in any letter case or by id.
func (c *adminCmd) project(ctx context.Context, ref string) (gaas.Project, error) {
	p, err := c.database.As(c.actor).Project(ctx, gaas.GetProjectRequest{Project: gaas.ProjectRef(ref)})
	if err != nil {
		return p, fmt.Errorf("project %q: %w", ref, err)
	}
	return p, nil
}

// projectJSON is a project as -json prints it.
type projectJSON struct {
	ID              int64     `json:"id"`
	Name            string    `json:"name"`
	Description     string    `json:"description"`
	ParentID        *int64    `json:"parent_id"`
	Parent          string    `json:"parent"`
	Cap             *string   `json:"cap"`
	Spent           string    `json:"spent"`
	ManagersApprove bool      `json:"managers_approve"`
	AutoApprove     bool      `json:"auto_approve"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
}

// creditsOrNil is c as a string, or nil when there is none.
func creditsOrNil(c *gaas.Credits) *string {
	if c == nil {
		return nil
	}
	s := c.String()
	return &s
}

// orDash is s, or "-" when s is nil.
func orDash(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
}

// printProjects prints projects; names holds the name of each parent.
func (c *adminCmd) printProjects(projects []gaas.Project, names map[int64]string) error {
	toJSON := func(p gaas.Project) projectJSON { return toProjectJSON(p, names) }
	return printRows(c, projects, toJSON, "ID\tNAME\tPARENT\tCAP\tSPENT\tMANAGERS_APPROVE\tCREATED\tDESCRIPTION", func(p gaas.Project) string {
		j := toJSON(p)
		parent := "-"
		if j.ParentID != nil {
			parent = j.Parent
		}
		return fmt.Sprintf("%d\t%s\t%s\t%s\t%s\t%t\t%s\t%q", j.ID, j.Name, parent, orDash(j.Cap), j.Spent, j.ManagersApprove,
			j.CreatedAt.Format(time.RFC3339), j.Description)
	})
}

// parentNames maps the parent of each of projects to its name.
func (c *adminCmd) parentNames(ctx context.Context, projects ...gaas.Project) (map[int64]string, error) {
	names := map[int64]string{}
	for _, p := range projects {
		names[p.ID] = p.Name
	}
	for _, p := range projects {
		if _, ok := names[p.ParentID]; p.ParentID == 0 || ok {
			continue
		}
		parent, err := c.project(ctx, fmt.Sprint(p.ParentID))
		if err != nil {
			return nil, err
		}
		names[parent.ID] = parent.Name
	}
	return names, nil
}

func (c *adminCmd) printProject(ctx context.Context, p gaas.Project) error {
	names, err := c.parentNames(ctx, p)
	if err != nil {
		return err
	}
	if *c.asJSON {
		return c.printJSON(toProjectJSON(p, names))
	}
	return c.printProjects([]gaas.Project{p}, names)
}

func (c *adminCmd) projectAdd(ctx context.Context, parent string, req gaas.CreateProjectRequest) error {
	if parent != "" {
		p, err := c.project(ctx, parent)
		if err != nil {
			return err
		}
		req.ParentID = p.ID
	}
	p, err := c.database.As(c.actor).CreateProject(ctx, req)
	if err != nil {
		return err
	}
	return c.printProject(ctx, p)
}

func (c *adminCmd) projectList(ctx context.Context) error {
	all, err := everyPage(func(cursor string) ([]gaas.Project, string, error) {
		page, err := c.database.As(c.actor).Projects(ctx, gaas.ProjectsRequest{Page: gaas.Page{Limit: gaas.MaxLimit, Cursor: cursor}})
		return page.Items, page.NextCursor, err
	})
	if err != nil {
		return err
	}
	names, err := c.parentNames(ctx, all...)
	if err != nil {
		return err
	}
	return c.printProjects(all, names)
}

// memberJSON is a member as -json prints it.
type memberJSON struct {
	UserID    int64     `json:"user_id"`
	User      string    `json:"user"`
	Role      string    `json:"role"`
	Limit     *string   `json:"limit"`
	GPUTypes  []string  `json:"gpu_types"`
	Spent     string    `json:"spent"`
	CreatedAt time.Time `json:"created_at"`
}

// membersJSON is members as -json prints them, with their users' names.
func membersJSON(members []gaas.Member) []memberJSON {
	out := make([]memberJSON, len(members))
	for i, m := range members {
		out[i] = memberJSON{m.UserID, m.Username, string(m.Role), creditsOrNil(m.Limit), m.GPUTypes, m.Spent.String(), m.CreatedAt}
	}
	return out
}

func (c *adminCmd) printMembers(members []gaas.Member) error {
	rows := membersJSON(members)
	same := func(m memberJSON) memberJSON { return m }
	return printRows(c, rows, same, "USER\tID\tROLE\tLIMIT\tSPENT\tSCOPE\tSINCE", func(m memberJSON) string {
		scope := "all"
		if m.GPUTypes != nil {
			scope = strings.Join(m.GPUTypes, ",")
		}
		return fmt.Sprintf("%s\t%d\t%s\t%s\t%s\t%s\t%s", m.User, m.UserID, m.Role, orDash(m.Limit), m.Spent, scope,
			m.CreatedAt.Format(time.RFC3339))
	})
}

// members lists every member of project id.
func (c *adminCmd) members(ctx context.Context, id int64) ([]gaas.Member, error) {
	var all []gaas.Member
	req := gaas.MembersRequest{ProjectID: id, Page: gaas.Page{Limit: gaas.MaxLimit}}
	for {
		page, err := c.database.As(c.actor).Members(ctx, req)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.NextCursor == "" {
			return all, nil
		}
		req.Cursor = page.NextCursor
	}
}

// projectShow prints a project, its members and its allocations, ended
// ones included.
func (c *adminCmd) projectShow(ctx context.Context) error {
	p, err := c.project(ctx, c.args[0])
	if err != nil {
		return err
	}
	members, err := c.members(ctx, p.ID)
	if err != nil {
		return err
	}
	allocs, err := c.allAllocations(ctx, gaas.AllocationsRequest{ProjectID: p.ID, Ended: true})
	if err != nil {
		return err
	}
	names, err := c.parentNames(ctx, p)
	if err != nil {
		return err
	}
	if *c.asJSON {
		rows := membersJSON(members)
		now := time.Now()
		out := struct {
			Project     projectJSON      `json:"project"`
			Balance     string           `json:"balance"`
			Members     []memberJSON     `json:"members"`
			Allocations []allocationJSON `json:"allocations"`
		}{toProjectJSON(p, names), balance(allocs, now).String(), rows, make([]allocationJSON, len(allocs))}
		for i, a := range allocs {
			out.Allocations[i] = toAllocationJSON(a, now)
		}
		return c.printJSON(out)
	}
	if err := c.printProjects([]gaas.Project{p}, names); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "\nbalance %s credits; %d members\n", balance(allocs, time.Now()), len(members))
	if err := c.printMembers(members); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "\n%d allocations\n", len(allocs))
	return c.printAllocations(allocs)
}

// balance is what the active ones of allocs hold at now.
func balance(allocs []gaas.Allocation, now time.Time) gaas.Credits {
	var sum gaas.Credits
	for _, a := range allocs {
		if a.ActiveAt(now) {
			sum += a.Remaining
		}
	}
	return sum
}

// toProjectJSON is p as -json prints it; names holds its parent's name.
func toProjectJSON(p gaas.Project, names map[int64]string) projectJSON {
	j := projectJSON{ID: p.ID, Name: p.Name, Description: p.Description, Cap: creditsOrNil(p.Cap), Spent: p.Spent.String(),
		ManagersApprove: p.ManagersApprove, AutoApprove: p.AutoApprove, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
	if p.ParentID != 0 {
		j.ParentID, j.Parent = &p.ParentID, names[p.ParentID]
	}
	return j
}

// memberChange adds the user to the project or changes their place in it
// (req), and prints the member; or, when req is nil, takes them out and
// prints the members left.
func (c *adminCmd) memberChange(ctx context.Context, user string, req *gaas.SetMemberRequest) error {
	p, err := c.project(ctx, c.args[0])
	if err != nil {
		return err
	}
	u, err := c.userByNameOrID(ctx, user)
	if err != nil {
		return err
	}
	if req == nil {
		if err := c.database.As(c.actor).RemoveMember(ctx, gaas.RemoveMemberRequest{ProjectID: p.ID, UserID: u.ID}); err != nil {
			return err
		}
		members, err := c.members(ctx, p.ID)
		if err != nil {
			return err
		}
		return c.printMembers(members)
	}
	req.ProjectID, req.UserID = p.ID, u.ID
	m, err := c.database.As(c.actor).SetMember(ctx, *req)
	if err != nil {
		return err
	}
	if *c.asJSON {
		return c.printJSON(membersJSON([]gaas.Member{m})[0])
	}
	return c.printMembers([]gaas.Member{m})
}

func (c *adminCmd) projectGrant(ctx context.Context, req gaas.CreateAllocationRequest) error {
	p, err := c.project(ctx, c.args[0])
	if err != nil {
		return err
	}
	req.ProjectID = p.ID
	a, err := c.database.As(c.actor).CreateAllocation(ctx, req)
	if err != nil {
		return err
	}
	return c.printAllocation(a)
}

func (c *adminCmd) projectSet(ctx context.Context, req gaas.UpdateProjectRequest) error {
	p, err := c.project(ctx, c.args[0])
	if err != nil {
		return err
	}
	req.ProjectID = p.ID
	if p, err = c.database.As(c.actor).UpdateProject(ctx, req); err != nil {
		return err
	}
	return c.printProject(ctx, p)
}

func (c *adminCmd) projectTransfer(ctx context.Context, to string, req gaas.TransferRequest) error {
	from, err := c.project(ctx, c.args[0])
	if err != nil {
		return err
	}
	child, err := c.project(ctx, to)
	if err != nil {
		return err
	}
	req.FromID, req.ToID = from.ID, child.ID
	a, err := c.database.As(c.actor).Transfer(ctx, req)
	if err != nil {
		return err
	}
	return c.printAllocation(a)
}
