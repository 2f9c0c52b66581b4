package database_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slipway-ml/slipway/internal/database"
	"github.com/slipway-ml/slipway/internal/testenv"
)

func TestPipeline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testenv.NewDB(t)
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE pipeline_t (id int PRIMARY KEY CHECK (id > 0))`); err != nil {
		t.Fatal(err)
	}
	rows := func(t *testing.T) []int {
		t.Helper()
		r, err := db.Pool.Query(ctx, `SELECT id FROM pipeline_t ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := pgx.CollectRows(r, pgx.RowTo[int])
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	insert := func(ids ...int) *pgx.Batch {
		b := &pgx.Batch{}
		for _, id := range ids {
			b.Queue(`INSERT INTO pipeline_t VALUES ($1)`, id)
		}
		return b
	}
	// every connection of the pool is idle outside a transaction
	clean := func(t *testing.T) {
		t.Helper()
		var conns []*pgxpool.Conn
		defer func() {
			for _, c := range conns {
				c.Release()
			}
		}()
		for range db.Pool.Stat().TotalConns() {
			c, err := db.Pool.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			if st := c.Conn().PgConn().TxStatus(); st != 'I' {
				t.Fatalf("a pooled connection is in transaction state %q", st)
			}
		}
	}

	t.Run("commits the first and last batches and what runs between", func(t *testing.T) {
		first := insert(1)
		first.Queue(`SELECT count(*) FROM pipeline_t`)
		err := database.Pipeline(ctx, db.Pool, first, func(q database.Querier, br pgx.BatchResults) (*pgx.Batch, error) {
			if _, err := br.Exec(); err != nil {
				return nil, err
			}
			var n int
			if err := br.QueryRow().Scan(&n); err != nil {
				return nil, err
			}
			if n != 1 {
				t.Errorf("the first batch sees %d rows, want its own 1", n)
			}
			if err := br.Close(); err != nil {
				return nil, err
			}
			if _, err := q.Exec(ctx, `INSERT INTO pipeline_t VALUES (2)`); err != nil {
				return nil, err
			}
			return insert(3), nil
		})
		if err != nil {
			t.Fatalf("Pipeline: %v", err)
		}
		if got := rows(t); len(got) != 3 || got[0] != 1 || got[2] != 3 {
			t.Fatalf("rows = %v, want [1 2 3]", got)
		}
	})

	failures := []struct {
		name  string
		first *pgx.Batch
		fn    func(q database.Querier, br pgx.BatchResults) (*pgx.Batch, error)
		want  func(error) bool
	}{
		{"an error of fn", insert(10), func(q database.Querier, br pgx.BatchResults) (*pgx.Batch, error) {
			br.Close()
			return nil, errors.New("no")
		}, func(err error) bool { return err != nil && err.Error() == "no" }},
		{"a statement of the first batch", insert(11, -1), func(q database.Querier, br pgx.BatchResults) (*pgx.Batch, error) {
			if _, err := br.Exec(); err != nil {
				return nil, err
			}
			_, err := br.Exec()
			return nil, err
		}, func(err error) bool { return err != nil }},
		{"a statement of the last batch", insert(12), func(q database.Querier, br pgx.BatchResults) (*pgx.Batch, error) {
			return insert(13, -1, 14), nil
		}, func(err error) bool { return err != nil }},
		{"an error fn swallowed", insert(15), func(q database.Querier, br pgx.BatchResults) (*pgx.Batch, error) {
			br.Close()
			q.Exec(ctx, `INSERT INTO pipeline_t VALUES (-1)`) // the transaction is aborted now
			return nil, nil
		}, func(err error) bool { return errors.Is(err, pgx.ErrTxCommitRollback) }},
	}
	for _, f := range failures {
		t.Run("rolls back on "+f.name, func(t *testing.T) {
			before := rows(t)
			err := database.Pipeline(ctx, db.Pool, f.first, f.fn)
			if !f.want(err) {
				t.Fatalf("Pipeline: %v", err)
			}
			if after := rows(t); len(after) != len(before) {
				t.Fatalf("rows = %v after a failure, want %v", after, before)
			}
			clean(t)
		})
	}
}
