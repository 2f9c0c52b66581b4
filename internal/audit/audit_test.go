package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slipway-ml/slipway/internal/audit"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/pagination"
	"github.com/slipway-ml/slipway/internal/testenv"
)

// record writes e in a transaction of its own.
func record(t *testing.T, ctx context.Context, pool *pgxpool.Pool, e audit.Entry) {
	t.Helper()
	err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		return audit.Record(ctx, tx, e)
	})
	if err != nil {
		t.Fatalf("Record %s: %v", e.Action, err)
	}
}

// createUser inserts a user row for actor_id to point at.
func createUser(t *testing.T, pool *pgxpool.Pool, name string) int64 {
	t.Helper()
	var id int64
	if err := pool.QueryRow(context.Background(), `INSERT INTO users (name, role) VALUES ($1, 'admin') RETURNING id`, name).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// event is an audit.Event with JSON decoded, for comparison.
type event struct {
	ActorName, Action, TargetType, TargetID string
	Before, After                           any
	RequestID, RemoteAddr                   string
}

func decode(t *testing.T, e audit.Event) event {
	t.Helper()
	var before, after any
	if err := json.Unmarshal(e.Before, &before); err != nil {
		t.Fatalf("event %d before %q: %v", e.ID, e.Before, err)
	}
	if err := json.Unmarshal(e.After, &after); err != nil {
		t.Fatalf("event %d after %q: %v", e.ID, e.After, err)
	}
	return event{e.ActorName, e.Action, e.TargetType, e.TargetID, before, after, e.RequestID, e.RemoteAddr}
}

func list(t *testing.T, log *audit.Log, f audit.Filter, p pagination.Page) ([]audit.Event, string) {
	t.Helper()
	events, next, err := log.List(context.Background(), f, p)
	if err != nil {
		t.Fatalf("List(%+v): %v", f, err)
	}
	return events, next
}

func targetIDs(events []audit.Event) []string {
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.TargetID
	}
	return ids
}

func TestRecordAndList(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	aliceID := createUser(t, db.Pool, "alice")
	ctx := audit.WithActor(context.Background(), audit.Actor{UserID: aliceID, Name: "alice"})
	ctx = audit.WithRequest(ctx, "req-0001", "192.0.2.7:51000")

	start := time.Now()
	record(t, ctx, db.Pool, audit.Entry{
		Action: "model.update", TargetType: "model", TargetID: "fraud",
		Before: map[string]any{"description": "old"},
		After:  map[string]any{"description": "new", "tags": []string{"a", "b"}, "n": 3},
	})
	// No actor and no request in ctx: the system did it.
	record(t, context.Background(), db.Pool, audit.Entry{Action: "session.expire", TargetType: "session", TargetID: "all"})

	events, next := list(t, audit.NewLog(db.Pool), audit.Filter{}, pagination.Page{})
	if next != "" {
		t.Errorf("next = %q with two events, want empty", next)
	}
	want := []event{
		{ActorName: "system", Action: "session.expire", TargetType: "session", TargetID: "all"},
		{
			ActorName: "alice", Action: "model.update", TargetType: "model", TargetID: "fraud",
			Before:    map[string]any{"description": "old"},
			After:     map[string]any{"description": "new", "tags": []any{"a", "b"}, "n": float64(3)},
			RequestID: "req-0001", RemoteAddr: "192.0.2.7:51000",
		},
	}
	got := make([]event, len(events))
	for i, e := range events {
		got[i] = decode(t, e)
		if e.At.Before(start.Add(-time.Minute)) || e.At.After(time.Now().Add(time.Minute)) {
			t.Errorf("event %d at %v, want about %v", e.ID, e.At, start)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("List (-want +got):\n%s", diff)
	}
	if events[0].ID <= events[1].ID {
		t.Errorf("ids %d, %d: want newest first", events[0].ID, events[1].ID)
	}

	// The actor's user id is kept (for joins), and NULL for the system.
	rows, err := db.Pool.Query(context.Background(), `SELECT actor_id FROM audit_log ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	actorIDs, err := pgx.CollectRows(rows, pgx.RowTo[*int64])
	if err != nil {
		t.Fatal(err)
	}
	if len(actorIDs) != 2 || actorIDs[0] == nil || *actorIDs[0] != aliceID || actorIDs[1] != nil {
		t.Errorf("actor_id column = %v, want [%d, NULL]", actorIDs, aliceID)
	}
}

func TestActorFrom(t *testing.T) {
	t.Parallel()
	if got := audit.ActorFrom(context.Background()); got != audit.System {
		t.Errorf("ActorFrom(empty) = %+v, want System", got)
	}
	a := audit.Actor{UserID: 7, Name: "bob"}
	if got := audit.ActorFrom(audit.WithActor(context.Background(), a)); got != a {
		t.Errorf("ActorFrom = %+v, want %+v", got, a)
	}
}

func TestRecordRollsBackWithTransaction(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	ctx := context.Background()
	boom := errors.New("the change failed")
	err := pgx.BeginTxFunc(ctx, db.Pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if err := audit.Record(ctx, tx, audit.Entry{Action: "model.delete", TargetType: "model", TargetID: "rolled-back"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("transaction error = %v, want %v", err, boom)
	}
	record(t, ctx, db.Pool, audit.Entry{Action: "model.delete", TargetType: "model", TargetID: "committed"})

	events, _ := list(t, audit.NewLog(db.Pool), audit.Filter{}, pagination.Page{})
	if diff := cmp.Diff([]string{"committed"}, targetIDs(events)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestRecordRefusesUnmarshalableValues(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	ctx := context.Background()
	err := pgx.BeginTxFunc(ctx, db.Pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		return audit.Record(ctx, tx, audit.Entry{Action: "x.y", TargetType: "x", TargetID: "1", After: map[string]any{"f": func() {}}})
	})
	if err == nil {
		t.Fatal("Record of a func value succeeded")
	}
	events, _ := list(t, audit.NewLog(db.Pool), audit.Filter{}, pagination.Page{})
	if len(events) != 0 {
		t.Errorf("%d events after a failed Record, want 0", len(events))
	}
}

func TestListFilters(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	as := func(name string) context.Context {
		return audit.WithActor(context.Background(), audit.Actor{Name: name})
	}
	// Oldest first; List returns newest first.
	for _, e := range []struct {
		actor string
		entry audit.Entry
	}{
		{"alice", audit.Entry{Action: "model.create", TargetType: "model", TargetID: "fraud"}},
		{"bob", audit.Entry{Action: "model.create", TargetType: "model", TargetID: "churn"}},
		{"alice", audit.Entry{Action: "token.revoke", TargetType: "token", TargetID: "7"}},
		{"system", audit.Entry{Action: "user.create", TargetType: "user", TargetID: "carol"}},
		{"bob", audit.Entry{Action: "model.update", TargetType: "model", TargetID: "fraud"}},
	} {
		record(t, as(e.actor), db.Pool, e.entry)
	}
	log := audit.NewLog(db.Pool)
	tests := []struct {
		name   string
		filter audit.Filter
		want   []string // target ids, newest first
	}{
		{"none", audit.Filter{}, []string{"fraud", "carol", "7", "churn", "fraud"}},
		{"actor", audit.Filter{Actor: "alice"}, []string{"7", "fraud"}},
		{"action", audit.Filter{Action: "model.create"}, []string{"churn", "fraud"}},
		{"target type", audit.Filter{TargetType: "model"}, []string{"fraud", "churn", "fraud"}},
		{"target", audit.Filter{TargetType: "model", TargetID: "fraud"}, []string{"fraud", "fraud"}},
		{"target id alone", audit.Filter{TargetID: "7"}, []string{"7"}},
		{"actor and action", audit.Filter{Actor: "bob", Action: "model.update"}, []string{"fraud"}},
		{"no match", audit.Filter{Actor: "mallory"}, []string{}},
		{"filters are exact, not patterns", audit.Filter{Action: "model.%"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			events, next := list(t, log, tt.filter, pagination.Page{})
			if diff := cmp.Diff(tt.want, targetIDs(events)); diff != "" {
				t.Errorf("target ids (-want +got):\n%s", diff)
			}
			if next != "" {
				t.Errorf("next = %q, want empty", next)
			}
			for _, e := range events {
				if (tt.filter.Actor != "" && e.ActorName != tt.filter.Actor) ||
					(tt.filter.Action != "" && e.Action != tt.filter.Action) ||
					(tt.filter.TargetType != "" && e.TargetType != tt.filter.TargetType) {
					t.Errorf("event %+v does not match filter %+v", e, tt.filter)
				}
			}
		})
	}
}

func TestListTimeFilters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testenv.NewDB(t)
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	// Inserted directly to control `at`; Record always stamps now().
	for i, id := range []string{"h0", "h1", "h2"} {
		if _, err := db.Pool.Exec(ctx, `INSERT INTO audit_log (at, actor_name, action, target_type, target_id) VALUES ($1, 'system', 'x.y', 'x', $2)`,
			t0.Add(time.Duration(i)*time.Hour), id); err != nil {
			t.Fatal(err)
		}
	}
	log := audit.NewLog(db.Pool)
	tests := []struct {
		name   string
		filter audit.Filter
		want   []string
	}{
		{"since is inclusive", audit.Filter{Since: t0.Add(time.Hour)}, []string{"h2", "h1"}},
		{"until is exclusive", audit.Filter{Until: t0.Add(time.Hour)}, []string{"h0"}},
		{"window", audit.Filter{Since: t0, Until: t0.Add(2 * time.Hour)}, []string{"h1", "h0"}},
		{"window between events", audit.Filter{Since: t0.Add(time.Minute), Until: t0.Add(59 * time.Minute)}, []string{}},
		{"other time zone", audit.Filter{Since: t0.Add(90 * time.Minute).In(time.FixedZone("X", -5*3600))}, []string{"h2"}},
		{"since and action", audit.Filter{Since: t0.Add(time.Hour), Action: "x.y", TargetID: "h1"}, []string{"h1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			events, _ := list(t, log, tt.filter, pagination.Page{})
			if diff := cmp.Diff(tt.want, targetIDs(events)); diff != "" {
				t.Errorf("target ids (-want +got):\n%s", diff)
			}
		})
	}

	n, err := log.CountSince(ctx, t0.Add(time.Hour))
	if err != nil || n != 2 {
		t.Errorf("CountSince(t0+1h) = %d, %v; want 2", n, err)
	}
}

func TestListRejectsBadInput(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	log := audit.NewLog(db.Pool)
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		filter audit.Filter
		page   pagination.Page
		field  string
	}{
		{"until before since", audit.Filter{Since: t0, Until: t0.Add(-time.Second)}, pagination.Page{}, "until"},
		{"until equals since", audit.Filter{Since: t0, Until: t0}, pagination.Page{}, "until"},
		{"garbage cursor", audit.Filter{}, pagination.Page{Cursor: "%%%"}, "cursor"},
		{"cursor of another shape", audit.Filter{}, pagination.Page{Cursor: pagination.Encode([]int{1})}, "cursor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			events, _, err := log.List(context.Background(), tt.filter, tt.page)
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("List = %d events, %v; want ErrInvalid", len(events), err)
			}
			var fe *errs.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Errorf("error %v does not name field %q", err, tt.field)
			}
		})
	}
}

func TestListPagination(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	for i := range 7 {
		record(t, context.Background(), db.Pool, audit.Entry{Action: "x.create", TargetType: "x", TargetID: fmt.Sprint(i)})
	}
	// Noise that the filtered walk below must skip.
	record(t, context.Background(), db.Pool, audit.Entry{Action: "y.create", TargetType: "y", TargetID: "noise"})

	log := audit.NewLog(db.Pool)
	var (
		sizes []int
		ids   []string
		seen  = map[int64]bool{}
		last  int64
	)
	p := pagination.Page{Limit: 3}
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatal("pagination does not end")
		}
		events, next := list(t, log, audit.Filter{Action: "x.create"}, p)
		sizes = append(sizes, len(events))
		for _, e := range events {
			if seen[e.ID] {
				t.Errorf("event %d returned twice", e.ID)
			}
			seen[e.ID] = true
			if last != 0 && e.ID >= last {
				t.Errorf("event %d after %d: want strictly newest first", e.ID, last)
			}
			last = e.ID
			ids = append(ids, e.TargetID)
		}
		if next == "" {
			break
		}
		p.Cursor = next
	}
	if diff := cmp.Diff([]int{3, 3, 1}, sizes); diff != "" {
		t.Errorf("page sizes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"6", "5", "4", "3", "2", "1", "0"}, ids); diff != "" {
		t.Errorf("target ids across pages (-want +got):\n%s", diff)
	}
}

// Identity columns are bigint; the cursor must not be squeezed into a
// 32-bit parameter.
func TestListPaginationBeyond32BitIDs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testenv.NewDB(t)
	if _, err := db.Pool.Exec(ctx, `ALTER TABLE audit_log ALTER COLUMN id RESTART WITH 3000000000`); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		record(t, ctx, db.Pool, audit.Entry{Action: "x.create", TargetType: "x", TargetID: fmt.Sprint(i)})
	}
	log := audit.NewLog(db.Pool)
	_, next := list(t, log, audit.Filter{}, pagination.Page{Limit: 1})
	events, _ := list(t, log, audit.Filter{}, pagination.Page{Limit: 1, Cursor: next})
	if diff := cmp.Diff([]string{"1"}, targetIDs(events)); diff != "" {
		t.Errorf("second page (-want +got):\n%s", diff)
	}
}

func TestAuditLogIsAppendOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testenv.NewDB(t)
	for _, id := range []string{"first", "second"} {
		record(t, ctx, db.Pool, audit.Entry{Action: "model.create", TargetType: "model", TargetID: id, After: map[string]any{"name": id}})
	}
	log := audit.NewLog(db.Pool)
	before, _ := list(t, log, audit.Filter{}, pagination.Page{})
	if len(before) != 2 {
		t.Fatalf("%d events, want 2", len(before))
	}

	for _, stmt := range []string{
		`UPDATE audit_log SET action = 'model.delete'`,
		`UPDATE audit_log SET after = NULL WHERE target_id = 'first'`,
		`DELETE FROM audit_log`,
		`DELETE FROM audit_log WHERE target_id = 'second'`,
		`TRUNCATE audit_log`,
		`TRUNCATE audit_log RESTART IDENTITY CASCADE`,
	} {
		_, err := db.Pool.Exec(ctx, stmt)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("%s: error = %v, want SQLSTATE 42501 (insufficient_privilege)", stmt, err)
		}
	}
	// Also inside an explicit transaction, the way application code runs.
	err := pgx.BeginTxFunc(ctx, db.Pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM audit_log WHERE target_id = 'first'`)
		return err
	})
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		t.Errorf("DELETE in a transaction: error = %v, want SQLSTATE 42501", err)
	}

	after, _ := list(t, log, audit.Filter{}, pagination.Page{})
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("audit log changed (-before +after):\n%s", diff)
	}
}
