package graphlayout

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

const eps = 1e-6

func box(ids ...string) []Node {
	ns := make([]Node, len(ids))
	for i, id := range ids {
		ns[i] = Node{ID: id, Width: 100, Height: 40}
	}
	return ns
}

// chainEdges returns the edges a->b, b->c, ... along ids.
func chainEdges(ids ...string) []Edge {
	var es []Edge
	for i := 1; i < len(ids); i++ {
		es = append(es, Edge{ids[i-1], ids[i]})
	}
	return es
}

func byID(t *testing.T, l Layout) map[string]PlacedNode {
	t.Helper()
	m := make(map[string]PlacedNode, len(l.Nodes))
	for _, n := range l.Nodes {
		if _, dup := m[n.ID]; dup {
			t.Fatalf("node %q placed twice", n.ID)
		}
		m[n.ID] = n
	}
	return m
}

func edgeByEnds(t *testing.T, l Layout, from, to string) PlacedEdge {
	t.Helper()
	for _, e := range l.Edges {
		if e.From == from && e.To == to {
			return e
		}
	}
	t.Fatalf("edge %s->%s not in layout", from, to)
	return PlacedEdge{}
}

func centreY(n PlacedNode) float64 { return n.Y + n.Height/2 }

func near(a, b float64) bool { return math.Abs(a-b) < eps }

// checkLayout verifies the invariants every layout must satisfy and fails t
// with a description of the first few violations.
func checkLayout(t *testing.T, l Layout, opt Options) {
	t.Helper()
	opt = opt.withDefaults()
	nodes := byID(t, l)

	// Columns: every node of a layer shares X; columns do not overlap.
	layers := map[int][]PlacedNode{}
	maxLayer := -1
	for _, n := range l.Nodes {
		layers[n.Layer] = append(layers[n.Layer], n)
		maxLayer = max(maxLayer, n.Layer)
		if n.X < opt.Margin-eps || n.Y < opt.Margin-eps ||
			n.X+n.Width > l.Width-opt.Margin+eps || n.Y+n.Height > l.Height-opt.Margin+eps {
			t.Errorf("node %q (%v,%v %vx%v) outside the %vx%v drawing", n.ID, n.X, n.Y, n.Width, n.Height, l.Width, l.Height)
		}
	}
	prevRight := math.Inf(-1)
	for li := 0; li <= maxLayer; li++ {
		ns := layers[li]
		if len(ns) == 0 {
			t.Errorf("layer %d is empty", li)
			continue
		}
		right := math.Inf(-1)
		for _, n := range ns {
			if !near(n.X, ns[0].X) {
				t.Errorf("layer %d: node %q at X=%v, node %q at X=%v", li, n.ID, n.X, ns[0].ID, ns[0].X)
			}
			right = max(right, n.X+n.Width)
		}
		if ns[0].X < prevRight+opt.LayerGap-eps {
			t.Errorf("layer %d starts at X=%v, previous layer ends at %v", li, ns[0].X, prevRight)
		}
		prevRight = right

		// No overlap inside a layer, gaps respected.
		slices.SortFunc(ns, func(a, b PlacedNode) int {
			switch {
			case a.Y < b.Y:
				return -1
			case a.Y > b.Y:
				return 1
			}
			return 0
		})
		for i := 1; i < len(ns); i++ {
			if a, b := ns[i-1], ns[i]; a.Y+a.Height+opt.NodeGap > b.Y+eps {
				t.Errorf("layer %d: %q (Y=%v, H=%v) and %q (Y=%v) closer than the node gap", li, a.ID, a.Y, a.Height, b.ID, b.Y)
			}
		}
	}

	// Edges: direction by layer, end points on the boxes.
	for _, e := range l.Edges {
		f, okf := nodes[e.From]
		to, okt := nodes[e.To]
		if !okf || !okt {
			t.Fatalf("edge %s->%s has an end that is not a placed node", e.From, e.To)
		}
		if len(e.Points) < 2 {
			t.Fatalf("edge %s->%s has %d points", e.From, e.To, len(e.Points))
		}
		if !e.Reversed && f.Layer >= to.Layer {
			t.Errorf("edge %s->%s goes from layer %d to layer %d", e.From, e.To, f.Layer, to.Layer)
		}
		if e.Reversed && f.Layer <= to.Layer {
			t.Errorf("reversed edge %s->%s goes from layer %d to layer %d", e.From, e.To, f.Layer, to.Layer)
		}
		span := to.Layer - f.Layer
		if span < 0 {
			span = -span
		}
		if len(e.Points) != span+1 {
			t.Errorf("edge %s->%s spans %d layers but has %d points", e.From, e.To, span, len(e.Points))
		}
		start, end := Point{f.X + f.Width, centreY(f)}, Point{to.X, centreY(to)}
		if e.Reversed {
			start, end = Point{f.X, centreY(f)}, Point{to.X + to.Width, centreY(to)}
		}
		p0, pn := e.Points[0], e.Points[len(e.Points)-1]
		if !near(p0.X, start.X) || !near(p0.Y, start.Y) || !near(pn.X, end.X) || !near(pn.Y, end.Y) {
			t.Errorf("edge %s->%s (reversed %v) runs %v..%v, want %v..%v", e.From, e.To, e.Reversed, p0, pn, start, end)
		}
		// Inner points sit strictly between the columns of the ends, in
		// monotone X order, and never inside a node box.
		for i := 1; i < len(e.Points); i++ {
			dx := e.Points[i].X - e.Points[i-1].X
			if (!e.Reversed && dx <= 0) || (e.Reversed && dx >= 0) {
				t.Errorf("edge %s->%s: points %v not monotone in X", e.From, e.To, e.Points)
				break
			}
		}
		for _, p := range e.Points[1 : len(e.Points)-1] {
			for _, n := range l.Nodes {
				if p.X > n.X-eps && p.X < n.X+n.Width+eps && p.Y > n.Y-eps && p.Y < n.Y+n.Height+eps {
					t.Errorf("edge %s->%s: dummy point %v inside node %q", e.From, e.To, p, n.ID)
				}
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// crossings counts pairs of crossing edge segments in the drawing: segments
// in the same gap between two columns whose vertical order flips.
func crossings(l Layout) int {
	var colX []float64
	for _, n := range l.Nodes {
		for len(colX) <= n.Layer {
			colX = append(colX, 0)
		}
		colX[n.Layer] = n.X
	}
	gapOf := func(x float64) int {
		g := 0
		for i, cx := range colX {
			if x >= cx-eps {
				g = i
			}
		}
		return g
	}
	type seg struct{ y1, y2 float64 }
	gaps := map[int][]seg{}
	for _, e := range l.Edges {
		for i := 1; i < len(e.Points); i++ {
			p, q := e.Points[i-1], e.Points[i]
			if p.X > q.X {
				p, q = q, p
			}
			g := gapOf(p.X)
			gaps[g] = append(gaps[g], seg{p.Y, q.Y})
		}
	}
	n := 0
	for _, ss := range gaps {
		for i := range ss {
			for j := i + 1; j < len(ss); j++ {
				if (ss[i].y1-ss[j].y1)*(ss[i].y2-ss[j].y2) < -eps {
					n++
				}
			}
		}
	}
	return n
}

// randomGraph returns n nodes of random sizes and m random edges, which may
// form cycles.
func randomGraph(seed uint64, n, m int) ([]Node, []Edge) {
	r := rand.New(rand.NewPCG(seed, 1))
	ns := make([]Node, n)
	for i := range ns {
		ns[i] = Node{ID: fmt.Sprintf("n%d", i), Width: 40 + float64(r.IntN(120)), Height: 20 + float64(r.IntN(40))}
	}
	es := make([]Edge, m)
	for i := range es {
		es[i] = Edge{ns[r.IntN(n)].ID, ns[r.IntN(n)].ID}
	}
	return ns, es
}

// randomLayeredDAG returns n nodes spread over ranks ranks and m edges, each
// from a lower rank to a higher one.
func randomLayeredDAG(seed uint64, n, m, ranks int) ([]Node, []Edge) {
	r := rand.New(rand.NewPCG(seed, 2))
	ns := make([]Node, n)
	rank := make([]int, n)
	byRank := make([][]int, ranks)
	for i := range ns {
		ns[i] = Node{ID: fmt.Sprintf("n%d", i), Width: 80 + float64(r.IntN(80)), Height: 30 + float64(r.IntN(20))}
		rank[i] = r.IntN(ranks)
		byRank[rank[i]] = append(byRank[rank[i]], i)
	}
	es := make([]Edge, 0, m)
	for len(es) < m {
		a, b := r.IntN(n), r.IntN(n)
		if rank[a] == rank[b] {
			continue
		}
		if rank[a] > rank[b] {
			a, b = b, a
		}
		es = append(es, Edge{ns[a].ID, ns[b].ID})
	}
	return ns, es
}

func TestChain(t *testing.T) {
	l := Layered(box("a", "b", "c"), chainEdges("a", "b", "c"), Options{})
	checkLayout(t, l, Options{})
	n := byID(t, l)
	for i, id := range []string{"a", "b", "c"} {
		if n[id].Layer != i {
			t.Errorf("%s: layer %d, want %d", id, n[id].Layer, i)
		}
	}
	if !(n["a"].X < n["b"].X && n["b"].X < n["c"].X) {
		t.Errorf("X not increasing: a=%v b=%v c=%v", n["a"].X, n["b"].X, n["c"].X)
	}
	// Default geometry: margin 16, layer gap 80, a straight horizontal line.
	if n["a"].X != 16 || n["a"].Y != 16 || n["b"].X != 16+100+80 || n["c"].X != 16+2*(100+80) {
		t.Errorf("positions a=(%v,%v) b.X=%v c.X=%v, want (16,16) 196 376", n["a"].X, n["a"].Y, n["b"].X, n["c"].X)
	}
	if n["b"].Y != n["a"].Y || n["c"].Y != n["a"].Y {
		t.Errorf("chain not straight: Y = %v %v %v", n["a"].Y, n["b"].Y, n["c"].Y)
	}
	if l.Width != 16+3*100+2*80+16 || l.Height != 16+40+16 {
		t.Errorf("size %vx%v, want 492x72", l.Width, l.Height)
	}
	for _, e := range l.Edges {
		if e.Reversed || len(e.Points) != 2 {
			t.Errorf("edge %s->%s: reversed %v, %d points", e.From, e.To, e.Reversed, len(e.Points))
		}
	}
}

func TestDiamond(t *testing.T) {
	es := []Edge{{"a", "b"}, {"a", "c"}, {"b", "d"}, {"c", "d"}}
	l := Layered(box("a", "b", "c", "d"), es, Options{})
	checkLayout(t, l, Options{})
	n := byID(t, l)
	want := map[string]int{"a": 0, "b": 1, "c": 1, "d": 2}
	for id, layer := range want {
		if n[id].Layer != layer {
			t.Errorf("%s: layer %d, want %d", id, n[id].Layer, layer)
		}
	}
	mid := (centreY(n["b"]) + centreY(n["c"])) / 2
	if !near(centreY(n["a"]), mid) || !near(centreY(n["d"]), mid) {
		t.Errorf("a and d not centred on b and c: a=%v d=%v, want %v", centreY(n["a"]), centreY(n["d"]), mid)
	}
	if got := crossings(l); got != 0 {
		t.Errorf("%d crossings, want 0", got)
	}
}

func TestLongEdgeGetsDummyPoints(t *testing.T) {
	es := append(chainEdges("a", "b", "c", "d"), Edge{"a", "d"})
	l := Layered(box("a", "b", "c", "d"), es, Options{})
	checkLayout(t, l, Options{}) // also checks dummy points avoid the boxes
	n := byID(t, l)
	if n["d"].Layer != 3 {
		t.Fatalf("d: layer %d, want 3", n["d"].Layer)
	}
	long := edgeByEnds(t, l, "a", "d")
	if len(long.Points) != 4 {
		t.Fatalf("a->d has %d points, want 4 (two dummies): %v", len(long.Points), long.Points)
	}
	for i, id := range []string{"b", "c"} {
		p := long.Points[i+1]
		if p.X <= n[id].X || p.X >= n[id].X+n[id].Width {
			t.Errorf("dummy point %v not within the column of %s (X %v..%v)", p, id, n[id].X, n[id].X+n[id].Width)
		}
	}
	if got := crossings(l); got != 0 {
		t.Errorf("%d crossings, want 0", got)
	}
}

func TestCycle(t *testing.T) {
	es := chainEdges("a", "b", "c", "a")
	l := Layered(box("a", "b", "c"), es, Options{})
	checkLayout(t, l, Options{})
	if len(l.Nodes) != 3 || len(l.Edges) != 3 {
		t.Fatalf("%d nodes, %d edges, want 3 and 3", len(l.Nodes), len(l.Edges))
	}
	var rev []string
	for _, e := range l.Edges {
		if e.Reversed {
			rev = append(rev, e.From+"->"+e.To)
		}
	}
	if !reflect.DeepEqual(rev, []string{"c->a"}) {
		t.Errorf("reversed edges %v, want [c->a] (the DFS back edge)", rev)
	}
	n := byID(t, l)
	if n["a"].Layer != 0 || n["b"].Layer != 1 || n["c"].Layer != 2 {
		t.Errorf("layers a=%d b=%d c=%d, want 0 1 2", n["a"].Layer, n["b"].Layer, n["c"].Layer)
	}
	// The reversed edge keeps its direction: from c back to a.
	back := edgeByEnds(t, l, "c", "a")
	if back.Points[0].X <= back.Points[len(back.Points)-1].X {
		t.Errorf("c->a points %v do not run from c (right) to a (left)", back.Points)
	}
}

func TestTwoNodeCycleAndStronglyConnected(t *testing.T) {
	// a<->b, and a complete digraph on 5 nodes: must terminate, keep the
	// invariants, and reverse exactly the DFS back edges.
	l := Layered(box("a", "b"), []Edge{{"a", "b"}, {"b", "a"}}, Options{})
	checkLayout(t, l, Options{})
	if l.Edges[0].Reversed || !l.Edges[1].Reversed {
		t.Errorf("a<->b: reversed flags %v %v, want false true", l.Edges[0].Reversed, l.Edges[1].Reversed)
	}
	ids := []string{"p", "q", "r", "s", "u"}
	var es []Edge
	for _, a := range ids {
		for _, b := range ids {
			es = append(es, Edge{a, b})
		}
	}
	l = Layered(box(ids...), es, Options{})
	checkLayout(t, l, Options{})
	if len(l.Edges) != 20 {
		t.Fatalf("%d edges, want 20 (self-loops dropped)", len(l.Edges))
	}
	nrev := 0
	for _, e := range l.Edges {
		if e.Reversed {
			nrev++
		}
	}
	if nrev != 10 {
		t.Errorf("%d reversed edges, want 10", nrev)
	}
}

func TestNoOverlapRandom(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		ns, es := randomGraph(seed, 300, 450)
		l := Layered(ns, es, Options{})
		if len(l.Nodes) != 300 {
			t.Fatalf("seed %d: %d nodes placed, want 300", seed, len(l.Nodes))
		}
		checkLayout(t, l, Options{})
	}
	ns, es := randomLayeredDAG(7, 300, 900, 8)
	opt := Options{LayerGap: 50, NodeGap: 10, Margin: 5, Sweeps: 3}
	l := Layered(ns, es, opt)
	checkLayout(t, l, opt)
	for _, e := range l.Edges {
		if e.Reversed {
			t.Fatalf("edge %s->%s of a DAG reversed", e.From, e.To)
		}
	}
}

func TestCrossingFree(t *testing.T) {
	t.Run("two chains crossed in input order", func(t *testing.T) {
		// The node list interleaves the chains so that in input order the
		// second layer reads b2, a2 under a1, b1.
		ns := box("a1", "b1", "b2", "a2", "b3", "a3")
		es := []Edge{{"b2", "b3"}, {"a1", "a2"}, {"b1", "b2"}, {"a2", "a3"}}
		l := Layered(ns, es, Options{})
		checkLayout(t, l, Options{})
		if got := crossings(l); got != 0 {
			t.Errorf("%d crossings, want 0", got)
		}
	})
	t.Run("shared target", func(t *testing.T) {
		// The depth-first start order is a, b, c over x, y: c->x crosses
		// b->y until the sweeps move c next to a.
		es := []Edge{{"a", "x"}, {"b", "y"}, {"c", "x"}}
		l := Layered(box("a", "b", "c", "x", "y"), es, Options{})
		checkLayout(t, l, Options{})
		if got := crossings(l); got != 0 {
			t.Errorf("%d crossings, want 0", got)
		}
		noSweeps := Layered(box("a", "b", "c", "x", "y"), es, Options{Sweeps: -1})
		if got := crossings(noSweeps); got != 1 {
			t.Errorf("without sweeps: %d crossings, want 1", got)
		}
	})
}

// TestReduceCrossingsFromBadOrder starts the sweeps from a fully crossed
// order of two parallel chains and expects them to untangle it.
func TestReduceCrossingsFromBadOrder(t *testing.T) {
	nodes := box("a1", "a2", "a3", "a4", "b1", "b2", "b3", "b4")
	var layer []int
	for i := range nodes {
		layer = append(layer, i%4)
	}
	dag := []edge{{0, 1}, {1, 2}, {2, 3}, {4, 5}, {5, 6}, {6, 7}}
	g := buildGraph(nodes, layer, dag)
	g.layers = [][]int{{0, 4}, {5, 1}, {2, 6}, {7, 3}}
	for _, vs := range g.layers {
		for p, v := range vs {
			g.pos[v] = p
		}
	}
	if c := g.crossings(); c != 3 {
		t.Fatalf("initial crossings %d, want 3", c)
	}
	g.reduceCrossings(DefaultSweeps)
	if c := g.crossings(); c != 0 {
		t.Errorf("after sweeps: %d crossings, want 0; layers %v", c, g.layers)
	}
	for l, vs := range g.layers {
		for p, v := range vs {
			if g.pos[v] != p {
				t.Errorf("layer %d: pos[%d] = %d, want %d", l, v, g.pos[v], p)
			}
		}
	}
}

func TestReduceCrossingsNeverWorse(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		ns, es := randomLayeredDAG(seed, 120, 300, 6)
		before := crossings(Layered(ns, es, Options{Sweeps: -1}))
		after := crossings(Layered(ns, es, Options{}))
		if after > before {
			t.Errorf("seed %d: %d crossings after sweeps, %d before", seed, after, before)
		}
		if seed == 1 && after >= before {
			t.Errorf("seed %d: sweeps did not reduce %d crossings", seed, before)
		}
	}
}

func TestCrossingCountMatchesGeometry(t *testing.T) {
	// The Fenwick count used to pick the best order agrees with a
	// brute-force count on the finished drawing.
	ns, es := randomGraph(11, 80, 160)
	l := Layered(ns, es, Options{})
	index := map[string]int{}
	var nodes []Node
	for _, n := range ns {
		if _, ok := index[n.ID]; !ok {
			index[n.ID] = len(nodes)
			nodes = append(nodes, n)
		}
	}
	var dag []edge
	layer := make([]int, len(nodes))
	for _, n := range l.Nodes {
		layer[index[n.ID]] = n.Layer
	}
	for _, e := range l.Edges {
		f, to := index[e.From], index[e.To]
		if e.Reversed {
			f, to = to, f
		}
		dag = append(dag, edge{f, to})
	}
	g := buildGraph(nodes, layer, dag)
	// Order each layer by the Y of the drawing.
	ys := make([]float64, len(g.layer))
	for _, n := range l.Nodes {
		ys[index[n.ID]] = centreY(n)
	}
	for i, e := range l.Edges {
		ch := g.chain(i)
		pts := slices.Clone(e.Points)
		if e.Reversed {
			slices.Reverse(pts)
		}
		for j, v := range ch {
			ys[v] = pts[j].Y
		}
	}
	for v, li := range g.layer {
		g.layers[li] = append(g.layers[li], v)
	}
	for _, vs := range g.layers {
		slices.SortStableFunc(vs, func(a, b int) int {
			switch {
			case ys[a] < ys[b]:
				return -1
			case ys[a] > ys[b]:
				return 1
			}
			return 0
		})
		for p, v := range vs {
			g.pos[v] = p
		}
	}
	if got, want := g.crossings(), crossings(l); got != want {
		t.Errorf("Fenwick count %d, brute force %d", got, want)
	}
}

func TestInputOrderPreserved(t *testing.T) {
	ns := box("z", "m", "a", "m", "q")
	ns[3].Width = 999 // duplicate ID: the first node wins
	es := []Edge{{"q", "z"}, {"a", "m"}, {"z", "a"}, {"m", "q"}, {"a", "m"}, {"z", "nowhere"}, {"m", "a"}}
	l := Layered(ns, es, Options{})
	checkLayout(t, l, Options{})
	var ids []string
	for _, n := range l.Nodes {
		ids = append(ids, n.ID)
	}
	if want := []string{"z", "m", "a", "q"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("node order %v, want %v", ids, want)
	}
	if w := byID(t, l)["m"].Width; w != 100 {
		t.Errorf("m has width %v, want 100 (first of the duplicates)", w)
	}
	var got []string
	for _, e := range l.Edges {
		got = append(got, e.From+"->"+e.To)
	}
	if want := []string{"q->z", "a->m", "z->a", "m->q", "m->a"}; !reflect.DeepEqual(got, want) {
		t.Errorf("edge order %v, want %v", got, want)
	}
}

func TestDeterministic(t *testing.T) {
	ns, es := randomGraph(42, 300, 600)
	a := Layered(ns, es, Options{})
	b := Layered(slices.Clone(ns), slices.Clone(es), Options{})
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two runs on the same input differ")
	}
	var pa, pb strings.Builder
	for i := range a.Edges {
		pa.WriteString(a.Edges[i].Path())
		pb.WriteString(b.Edges[i].Path())
	}
	if pa.String() != pb.String() {
		t.Fatal("paths differ between runs")
	}
}

func TestEmpty(t *testing.T) {
	for name, l := range map[string]Layout{
		"nil":                Layered(nil, nil, Options{}),
		"edges without node": Layered(nil, []Edge{{"a", "b"}}, Options{Margin: 10}),
		"empty slices":       Layered([]Node{}, []Edge{}, Options{}),
	} {
		if l.Width != 0 || l.Height != 0 || len(l.Nodes) != 0 || len(l.Edges) != 0 {
			t.Errorf("%s: got %+v, want an empty layout", name, l)
		}
	}
}

func TestDroppedEdges(t *testing.T) {
	es := []Edge{
		{"a", "a"},       // self-loop
		{"a", "ghost"},   // unknown head
		{"ghost", "b"},   // unknown tail
		{"a", "b"},       // kept
		{"a", "b"},       // duplicate
		{"b", "b"},       // self-loop
		{"b", "a"},       // kept, closes a cycle
		{"", "a"},        // unknown (empty) ID
		{"ghost", "gho"}, // both unknown
	}
	l := Layered(box("a", "b"), es, Options{})
	checkLayout(t, l, Options{})
	if len(l.Edges) != 2 {
		t.Fatalf("%d edges kept, want 2: %+v", len(l.Edges), l.Edges)
	}
	if e := l.Edges[0]; e.From != "a" || e.To != "b" || e.Reversed {
		t.Errorf("first edge %+v, want a->b not reversed", e)
	}
	if e := l.Edges[1]; e.From != "b" || e.To != "a" || !e.Reversed {
		t.Errorf("second edge %+v, want b->a reversed", e)
	}
}

func TestDisconnected(t *testing.T) {
	ns := box("lonely", "a", "b", "c", "d", "e")
	es := []Edge{{"a", "b"}, {"c", "d"}, {"d", "e"}}
	l := Layered(ns, es, Options{})
	checkLayout(t, l, Options{})
	n := byID(t, l)
	if n["lonely"].Layer != 0 || n["a"].Layer != 0 || n["c"].Layer != 0 || n["e"].Layer != 2 {
		t.Errorf("layers lonely=%d a=%d c=%d e=%d, want 0 0 0 2", n["lonely"].Layer, n["a"].Layer, n["c"].Layer, n["e"].Layer)
	}
	if crossings(l) != 0 {
		t.Errorf("%d crossings, want 0", crossings(l))
	}
}

func TestSourcesPulledTowardsTheirSuccessor(t *testing.T) {
	// cfg feeds only the last node of a chain: it sits right before it, so
	// its edge is short, instead of in layer 0 with a long edge.
	es := append(chainEdges("a", "b", "c", "d"), Edge{"cfg", "d"})
	l := Layered(box("a", "b", "c", "d", "cfg"), es, Options{})
	checkLayout(t, l, Options{})
	n := byID(t, l)
	if n["cfg"].Layer != 2 {
		t.Errorf("cfg: layer %d, want 2", n["cfg"].Layer)
	}
	if p := edgeByEnds(t, l, "cfg", "d").Points; len(p) != 2 {
		t.Errorf("cfg->d has %d points, want 2", len(p))
	}
}

func TestOptions(t *testing.T) {
	single := []Node{{ID: "x", Width: 50, Height: 20}}
	l := Layered(single, nil, Options{})
	if n := l.Nodes[0]; n.X != 16 || n.Y != 16 || l.Width != 82 || l.Height != 52 {
		t.Errorf("defaults: node at (%v,%v), size %vx%v; want (16,16), 82x52", n.X, n.Y, l.Width, l.Height)
	}
	l = Layered(single, nil, Options{Margin: -1})
	if n := l.Nodes[0]; n.X != 0 || n.Y != 0 || l.Width != 50 || l.Height != 20 {
		t.Errorf("no margin: node at (%v,%v), size %vx%v; want (0,0), 50x20", n.X, n.Y, l.Width, l.Height)
	}
	opt := Options{LayerGap: 10, NodeGap: 5, Margin: 2}
	l = Layered(box("a", "b", "c"), []Edge{{"a", "b"}, {"a", "c"}}, opt)
	checkLayout(t, l, opt)
	n := byID(t, l)
	if n["b"].X != 2+100+10 {
		t.Errorf("b.X = %v, want 112", n["b"].X)
	}
	if gap := math.Abs(n["b"].Y-n["c"].Y) - 40; !near(gap, 5) {
		t.Errorf("gap between b and c %v, want 5", gap)
	}
	// Negative sizes count as zero.
	l = Layered([]Node{{ID: "neg", Width: -5, Height: math.NaN()}}, nil, Options{Margin: -1})
	if n := l.Nodes[0]; n.Width != 0 || n.Height != 0 || l.Width != 0 || l.Height != 0 {
		t.Errorf("bad sizes: %+v in %vx%v", n, l.Width, l.Height)
	}
}

func TestPath(t *testing.T) {
	l := Layered(box("a", "b"), []Edge{{"a", "b"}}, Options{})
	p := l.Edges[0].Path()
	if !strings.HasPrefix(p, "M") || !strings.Contains(p, " C") {
		t.Errorf("path %q: want M then a C segment", p)
	}
	if want := "M116,36 C156,36 156,36 196,36"; p != want {
		t.Errorf("path %q, want %q", p, want)
	}

	e := PlacedEdge{Points: []Point{{0, 0}, {10.04, 20.26}, {-0.04, 5}}}
	if got, want := e.Path(), "M0,0 C5,0 5,20.3 10,20.3 C5,20.3 5,5 0,5"; got != want {
		t.Errorf("path %q, want %q", got, want)
	}
	if got := strings.Count(e.Path(), "C"); got != 2 {
		t.Errorf("%d C segments, want 2", got)
	}
	if got := (PlacedEdge{}).Path(); got != "" {
		t.Errorf("path of an edge without points %q, want empty", got)
	}

	// A long edge has one C segment per gap it crosses.
	es := append(chainEdges("a", "b", "c", "d"), Edge{"a", "d"})
	l = Layered(box("a", "b", "c", "d"), es, Options{})
	if got := strings.Count(edgeByEnds(t, l, "a", "d").Path(), "C"); got != 3 {
		t.Errorf("a->d: %d C segments, want 3", got)
	}
}

func TestLargeGraphsFinish(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	ns, es := randomLayeredDAG(3, 2000, 6000, 20)
	checkLayoutCheap(t, Layered(ns, es, Options{}))
	ns, es = randomGraph(3, 600, 1500) // many cycles, hundreds of layers
	checkLayoutCheap(t, Layered(ns, es, Options{}))
}

// checkLayoutCheap checks layers and overlaps only, in O(n log n).
func checkLayoutCheap(t *testing.T, l Layout) {
	t.Helper()
	layers := map[int][]PlacedNode{}
	for _, n := range l.Nodes {
		layers[n.Layer] = append(layers[n.Layer], n)
	}
	for li, ns := range layers {
		slices.SortFunc(ns, func(a, b PlacedNode) int {
			switch {
			case a.Y < b.Y:
				return -1
			case a.Y > b.Y:
				return 1
			}
			return 0
		})
		for i := 1; i < len(ns); i++ {
			if ns[i-1].Y+ns[i-1].Height > ns[i].Y+eps {
				t.Fatalf("layer %d: %q and %q overlap", li, ns[i-1].ID, ns[i].ID)
			}
		}
	}
	n := byID(t, l)
	for _, e := range l.Edges {
		if !e.Reversed && n[e.From].Layer >= n[e.To].Layer {
			t.Fatalf("edge %s->%s goes from layer %d to %d", e.From, e.To, n[e.From].Layer, n[e.To].Layer)
		}
	}
}

func BenchmarkLayered(b *testing.B) {
	ns, es := randomLayeredDAG(1, 500, 1500, 12)
	b.ReportAllocs()
	for b.Loop() {
		Layered(ns, es, Options{})
	}
}

// BenchmarkLayeredLarge measures the upper end of the intended sizes: a
// layered DAG of 2000 nodes and 6000 edges, and a random digraph of the same
// size, full of cycles, whose depth-first reversal yields about a thousand
// layers and a million and a half dummies (the worst case; Layered then
// caps its sweeps).
func BenchmarkLayeredLarge(b *testing.B) {
	b.Run("layeredDAG-2000x6000", func(b *testing.B) {
		ns, es := randomLayeredDAG(1, 2000, 6000, 20)
		b.ReportAllocs()
		for b.Loop() {
			Layered(ns, es, Options{})
		}
	})
	b.Run("cyclicDigraph-2000x6000", func(b *testing.B) {
		ns, es := randomGraph(1, 2000, 6000)
		b.ReportAllocs()
		for b.Loop() {
			Layered(ns, es, Options{})
		}
	})
}
