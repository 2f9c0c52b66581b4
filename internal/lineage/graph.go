package lineage

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	"github.com/slipway-ml/slipway/internal/errs"
)

// Directions of a lineage walk.
const (
	Upstream   = "upstream"   // what produced the node
	Downstream = "downstream" // what was produced from it
	Both       = "both"
)

// Bounds of a walk.
const (
	MaxDepth        = 20
	DefaultDepth    = 5
	MaxNodes        = 5000
	DefaultMaxNodes = 500
)

// GraphQuery asks for the neighbourhood of one node.
type GraphQuery struct {
	Root      NodeRef
	Direction string
	Depth     int
	MaxNodes  int
}

// ParseGraphQuery reads a query from its text parameters; empty ones take
// their defaults.
func ParseGraphQuery(nodeRef, direction, depth, maxNodes string) (GraphQuery, error) {
	var fe errs.FieldErrors
	q := GraphQuery{Direction: direction, Depth: DefaultDepth, MaxNodes: DefaultMaxNodes}
	if nodeRef == "" {
		fe.Add("node", "is required: %s", nodeRefRule)
	} else if r, err := ParseNodeRef("node", nodeRef); err != nil {
		fe = append(fe, err.(*errs.FieldError))
	} else {
		q.Root = r
	}
	switch direction {
	case "":
		q.Direction = Upstream
	case Upstream, Downstream, Both:
	default:
		fe.Add("direction", "must be upstream, downstream or both")
	}
	if depth != "" {
		n, err := strconv.Atoi(depth)
		if err != nil || n < 1 || n > MaxDepth {
			fe.Add("depth", "must be an integer from 1 to %d", MaxDepth)
		}
		q.Depth = n
	}
	if maxNodes != "" {
		n, err := strconv.Atoi(maxNodes)
		if err != nil || n < 1 || n > MaxNodes {
			fe.Add("max_nodes", "must be an integer from 1 to %d", MaxNodes)
		}
		q.MaxNodes = n
	}
	return q, fe.Err()
}

// Node is a node of a lineage graph.
type Node struct {
	ID      string `json:"id"` // its reference, e.g. model_version:ranker/3
	Kind    string `json:"kind"`
	Label   string `json:"label"`
	Name    string `json:"name,omitempty"`    // dataset or model name
	Version int    `json:"version,omitempty"` // dataset or model version number
	RunID   int64  `json:"run_id,omitempty"`
	// Status is a run's status, a model version's status, or a dataset
	// version's data-quality status (passed, failed, none).
	Status string `json:"status"`
	// Detail is a dataset version's type, a run's orchestrator, a model
	// version's kind.
	Detail string `json:"detail"`
	// Depth is the number of edges between the node and the root.
	Depth int `json:"depth"`
	id    node
}

// Edge is an edge of a lineage graph; data flows from From to To.
type Edge struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Graph is the answer to a GraphQuery.
type Graph struct {
	Root      string `json:"root"`
	Direction string `json:"direction"`
	Depth     int    `json:"depth"`
	Nodes     []Node `json:"nodes"`
	Edges     []Edge `json:"edges"`
	// Truncated says the walk stopped at MaxNodes before reaching Depth
	// everywhere: ask again with a smaller depth or from a nearer node.
	Truncated bool `json:"truncated"`
}

// Lineage walks the graph from the query's root.
func (s *Service) Lineage(ctx context.Context, q GraphQuery) (Graph, error) {
	root, err := resolve(ctx, s.db, q.Root)
	if err != nil {
		return Graph{}, err
	}
	return s.graph(ctx, root, q)
}

func (s *Service) graph(ctx context.Context, root node, q GraphQuery) (Graph, error) {
	depths := map[node]int{}
	truncated := false
	for _, dir := range []string{Upstream, Downstream} {
		if q.Direction != dir && q.Direction != Both {
			continue
		}
		found, cut, err := walk(ctx, s.db, root, dir, q.Depth, q.MaxNodes)
		if err != nil {
			return Graph{}, err
		}
		truncated = truncated || cut
		for n, d := range found {
			if old, ok := depths[n]; !ok || d < old {
				depths[n] = d
			}
		}
	}
	nodes, err := describeNodes(ctx, s.db, depths)
	if err != nil {
		return Graph{}, err
	}
	edges, err := edgesAmong(ctx, s.db, nodes)
	if err != nil {
		return Graph{}, err
	}
	rootRef := q.Root.String()
	for _, n := range nodes {
		if n.id == root {
			rootRef = n.ID
		}
	}
	return Graph{Root: rootRef, Direction: q.Direction, Depth: q.Depth, Nodes: nodes, Edges: edges, Truncated: truncated}, nil
}

// walk finds the nodes within depth edges of root in one direction, with
// their distance, in one recursive query. UNION keeps one row per (node,
// distance) and the distance bound ends every path, so a cycle costs at
// most depth repetitions and the walk always ends. The walk reads rows
// breadth first and stops after a budget of rows; nodes beyond maxNodes,
// farthest first, are dropped. truncated says either happened.
func walk(ctx context.Context, q querier, root node, dir string, depth, maxNodes int) (map[node]int, bool, error) {
	next, from := "src", "dst" // upstream: from an edge's destination to its source
	if dir == Downstream {
		next, from = "dst", "src"
	}
	budget := maxNodes * 8
	rows, err := q.Query(ctx, `
		WITH RECURSIVE walk(kind, id, depth) AS (
			SELECT $1::text, $2::bigint, 0
			UNION
			SELECT e.`+next+`_kind, e.`+next+`_id, w.depth + 1
			FROM walk w JOIN lineage_edges e ON e.`+from+`_kind = w.kind AND e.`+from+`_id = w.id
			WHERE w.depth < $3
		), budget AS (SELECT * FROM walk LIMIT $4)
		SELECT kind, id, min(depth), (SELECT count(*) FROM budget) FROM budget
		GROUP BY kind, id ORDER BY min(depth), kind, id LIMIT $5`,
		root.Kind, root.ID, depth, budget, maxNodes+1)
	if err != nil {
		return nil, false, fmt.Errorf("walk lineage: %w", err)
	}
	defer rows.Close()
	found := map[node]int{}
	truncated := false
	for rows.Next() {
		var n node
		var d int
		var read int
		if err := rows.Scan(&n.Kind, &n.ID, &d, &read); err != nil {
			return nil, false, fmt.Errorf("walk lineage: %w", err)
		}
		if read >= budget || len(found) == maxNodes {
			truncated = true
		}
		if len(found) < maxNodes {
			found[n] = d
		}
	}
	return found, truncated, rows.Err()
}

// describeNodes reads what the graph shows of each node, in three queries.
func describeNodes(ctx context.Context, q querier, depths map[node]int) ([]Node, error) {
	ids := map[string][]int64{}
	for n := range depths {
		ids[n.Kind] = append(ids[n.Kind], n.ID)
	}
	var nodes []Node
	add := func(n Node) {
		n.Depth = depths[n.id]
		nodes = append(nodes, n)
	}
	if len(ids[KindDatasetVersion]) > 0 {
		rows, err := q.Query(ctx, `
			SELECT dv.id, d.name, dv.version, dv.source_type, q.passed, q.failed
			FROM dataset_versions dv JOIN datasets d ON d.id = dv.dataset_id
			CROSS JOIN LATERAL (
				SELECT count(*) FILTER (WHERE passed) AS passed, count(*) FILTER (WHERE NOT passed) AS failed
				FROM (SELECT DISTINCT ON (suite) passed FROM dataset_quality_results r
				      WHERE r.dataset_version_id = dv.id ORDER BY suite, id DESC) latest) q
			WHERE dv.id = ANY($1)`, ids[KindDatasetVersion])
		if err != nil {
			return nil, fmt.Errorf("describe dataset versions: %w", err)
		}
		for rows.Next() {
			var n Node
			var passed, failed int
			if err := rows.Scan(&n.id.ID, &n.Name, &n.Version, &n.Detail, &passed, &failed); err != nil {
				rows.Close()
				return nil, fmt.Errorf("describe dataset versions: %w", err)
			}
			n.id.Kind, n.Kind, n.Status = KindDatasetVersion, KindDatasetVersion, qualityStatus(passed, failed)
			n.ID = NodeRef{Kind: n.Kind, Name: n.Name, Version: n.Version}.String()
			n.Label = fmt.Sprintf("%s v%d", n.Name, n.Version)
			add(n)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("describe dataset versions: %w", err)
		}
	}
	if len(ids[KindRun]) > 0 {
		rows, err := q.Query(ctx, `SELECT id, name, orchestrator, external_id, status FROM runs WHERE id = ANY($1)`, ids[KindRun])
		if err != nil {
			return nil, fmt.Errorf("describe runs: %w", err)
		}
		for rows.Next() {
			var r Run
			if err := rows.Scan(&r.ID, &r.Name, &r.Orchestrator, &r.ExternalID, &r.Status); err != nil {
				rows.Close()
				return nil, fmt.Errorf("describe runs: %w", err)
			}
			add(Node{id: node{KindRun, r.ID}, ID: r.Ref().String(), Kind: KindRun, Label: r.Label(), RunID: r.ID, Status: r.Status, Detail: r.Orchestrator})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("describe runs: %w", err)
		}
	}
	if len(ids[KindModelVersion]) > 0 {
		rows, err := q.Query(ctx, `
			SELECT v.id, m.name, v.version, v.status, v.kind
			FROM model_versions v JOIN models m ON m.id = v.model_id WHERE v.id = ANY($1)`, ids[KindModelVersion])
		if err != nil {
			return nil, fmt.Errorf("describe model versions: %w", err)
		}
		for rows.Next() {
			var n Node
			if err := rows.Scan(&n.id.ID, &n.Name, &n.Version, &n.Status, &n.Detail); err != nil {
				rows.Close()
				return nil, fmt.Errorf("describe model versions: %w", err)
			}
			n.id.Kind, n.Kind = KindModelVersion, KindModelVersion
			n.ID = NodeRef{Kind: n.Kind, Name: n.Name, Version: n.Version}.String()
			n.Label = fmt.Sprintf("%s v%d", n.Name, n.Version)
			add(n)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("describe model versions: %w", err)
		}
	}
	sort.Slice(nodes, func(i, j int) bool {
		a, b := nodes[i], nodes[j]
		if a.Depth != b.Depth {
			return a.Depth < b.Depth
		}
		return a.ID < b.ID
	})
	if nodes == nil {
		nodes = []Node{}
	}
	return nodes, nil
}

// edgesAmong returns the edges whose two ends are both among nodes.
func edgesAmong(ctx context.Context, q querier, nodes []Node) ([]Edge, error) {
	kinds, ids := make([]string, len(nodes)), make([]int64, len(nodes))
	byID := make(map[node]string, len(nodes))
	for i, n := range nodes {
		kinds[i], ids[i] = n.id.Kind, n.id.ID
		byID[n.id] = n.ID
	}
	rows, err := q.Query(ctx, `
		SELECT e.src_kind, e.src_id, e.dst_kind, e.dst_id
		FROM unnest($1::text[], $2::bigint[]) AS n(kind, id)
		JOIN lineage_edges e ON e.dst_kind = n.kind AND e.dst_id = n.id
		WHERE (e.src_kind, e.src_id) IN (SELECT * FROM unnest($1::text[], $2::bigint[]))`, kinds, ids)
	if err != nil {
		return nil, fmt.Errorf("lineage edges: %w", err)
	}
	defer rows.Close()
	edges := []Edge{}
	for rows.Next() {
		var from, to node
		if err := rows.Scan(&from.Kind, &from.ID, &to.Kind, &to.ID); err != nil {
			return nil, fmt.Errorf("lineage edges: %w", err)
		}
		edges = append(edges, Edge{From: byID[from], To: byID[to]})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("lineage edges: %w", err)
	}
	sort.Slice(edges, func(i, j int) bool {
		if edges[i].From != edges[j].From {
			return edges[i].From < edges[j].From
		}
		return edges[i].To < edges[j].To
	})
	return edges, nil
}
