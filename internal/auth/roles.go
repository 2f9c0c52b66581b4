// Package auth holds Slipway's identities: users and their roles, password
// hashes, browser sessions and API tokens. The HTTP layer resolves a request
// to an Identity here and checks the role a route needs with Allows.
package auth

import (
	"github.com/slipway-ml/slipway/internal/errs"
)

// Role is what a user may do. Roles are ordered: each includes the ones
// before it (a reviewer may also register things, an admin may do all).
type Role string

const (
	RoleViewer      Role = "viewer"      // read everything
	RoleContributor Role = "contributor" // register datasets, runs, versions, reports; request promotions (CI tokens)
	RoleReviewer    Role = "reviewer"    // approve or reject promotions
	RoleAdmin       Role = "admin"       // users, policies, webhooks, audit
)

// Roles lists every role, least privileged first.
var Roles = []Role{RoleViewer, RoleContributor, RoleReviewer, RoleAdmin}

func (r Role) rank() int {
	for i, x := range Roles {
		if x == r {
			return i + 1
		}
	}
	return 0
}

// Allows reports whether a holder of r may do what needs role need.
func (r Role) Allows(need Role) bool {
	return r.rank() > 0 && need.rank() > 0 && r.rank() >= need.rank()
}

// ParseRole validates a role name.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if r.rank() == 0 {
		return "", errs.Invalid("role", "must be one of viewer, contributor, reviewer, admin")
	}
	return r, nil
}
