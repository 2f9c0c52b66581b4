// Package graphlayout computes layered drawings of small directed graphs, in
// the style of Sugiyama, for rendering lineage graphs as SVG on the server.
//
// Layered places the nodes in columns (layers) so that data flows from left
// to right: every edge points to a column further right, except the few edges
// that had to be turned around to break cycles. Edges that span several
// columns are routed through the gaps between the nodes of the columns they
// cross, and the order of the nodes in each column is chosen to keep edge
// crossings low. The package uses only the standard library and has no state:
// the same input always gives the same output.
package graphlayout

import (
	"math"
	"slices"
	"strconv"
	"strings"
)

// Defaults used by Layered for the zero values of Options.
const (
	DefaultLayerGap = 80
	DefaultNodeGap  = 24
	DefaultMargin   = 16
	DefaultSweeps   = 8
)

const (
	// balancePasses bounds the passes that shorten edges after the
	// longest-path layering.
	balancePasses = 16
	// alignRounds is the number of down-and-up passes of vertical alignment.
	alignRounds = 8
	// transposeRounds bounds the rounds of neighbour swaps per layer after
	// each barycenter pass.
	transposeRounds = 1
	// workBudget caps the vertex and segment visits of the crossing sweeps
	// and of the vertical alignment, so that graphs whose layering needs a
	// huge number of dummies (dense graphs with many cycles) still finish
	// in time proportional to their size.
	workBudget = 2_000_000
	// looseWeight is how strongly a vertex without neighbours in the
	// adjacent layers holds on to its current position.
	looseWeight = 1e-3
)

// Node is a box to place. ID names it in edges; Width and Height are the size
// of the box, in the same unit as the coordinates of the result (negative
// sizes count as zero).
type Node struct {
	ID            string
	Width, Height float64 // size of the node's box
}

// Edge is a directed edge: data flows From -> To. Both are node IDs.
type Edge struct{ From, To string } // data flows From -> To

// Options tunes the layout. A zero field selects its default (DefaultLayerGap,
// DefaultNodeGap, DefaultMargin, DefaultSweeps); a negative field means zero,
// so that, for example, Margin: -1 gives a drawing without a margin and
// Sweeps: -1 turns crossing reduction off. On very large layered graphs
// (over about 250,000 nodes, dummies and edge segments) Layered runs fewer
// sweeps than asked, to bound its running time.
type Options struct {
	LayerGap float64 // horizontal gap between layers (default 80)
	NodeGap  float64 // vertical gap between nodes of a layer (default 24)
	Margin   float64 // around the drawing (default 16)
	Sweeps   int     // crossing-reduction sweeps, each one pass down and one up (default 8)
}

// Point is a position in the drawing; X grows to the right and Y downwards,
// as in SVG.
type Point struct{ X, Y float64 }

// PlacedNode is a node with its position: X, Y is the top-left corner of its
// box and Layer the index of its column, 0 being the leftmost.
type PlacedNode struct {
	Node
	X, Y  float64 // top-left corner
	Layer int
}

// PlacedEdge is an edge with its route. Points runs from the right-middle of
// From to the left-middle of To, through one point per column crossed by a
// long edge, at the middle of the column and in the slot of the edge's dummy
// vertex, clear of the nodes. A Reversed edge points against the flow, from
// right to left: its Points still start at From and end at To, but leave
// From at its left-middle and reach To at its right-middle.
type PlacedEdge struct {
	From, To string
	Points   []Point // from the right-middle of From to the left-middle of To, through one point per dummy node of a long edge
	Reversed bool    // the edge was reversed to break a cycle (drawn against the flow)
}

// Layout is the result of Layered. Width and Height are the size of the whole
// drawing, margins included. Nodes holds one entry per distinct node ID, in
// input order (for a repeated ID, the first node wins). Edges holds the edges
// in input order, without repeated edges, self-loops and edges whose ends are
// not nodes.
type Layout struct {
	Width, Height float64
	Nodes         []PlacedNode // in input order
	Edges         []PlacedEdge // in input order, duplicates and edges to unknown nodes or self-loops dropped
}

// edge is an edge between node indexes.
type edge struct{ from, to int }

// Layered lays the graph out left to right: sources on the left, data flowing
// to the right.
//
// It breaks cycles by reversing the back edges of a depth-first search that
// visits nodes and edges in input order, and assigns layers by longest path
// from the sources; then a node with more outgoing than incoming edges moves
// right, up to its nearest successor (and conversely), to shorten edges, so a
// source feeding only a late step sits just before it. A dummy vertex is added
// wherever an edge crosses a layer. Each layer is ordered by barycenter sweeps,
// every pass followed by a round of swaps of neighbours that removes
// crossings, keeping the order with the fewest crossings seen. Finally the
// vertices of each layer are placed, in that order and without overlap, as
// close as possible to the vertical position of their neighbours, long edges
// pulling hardest so that they run straight.
// An empty graph gives an empty Layout, of size zero.
func Layered(nodes []Node, edges []Edge, opt Options) Layout {
	opt = opt.withDefaults()

	index := make(map[string]int, len(nodes))
	uniq := make([]Node, 0, len(nodes))
	for _, nd := range nodes {
		if _, dup := index[nd.ID]; dup {
			continue
		}
		index[nd.ID] = len(uniq)
		nd.Width, nd.Height = size(nd.Width), size(nd.Height)
		uniq = append(uniq, nd)
	}
	if len(uniq) == 0 {
		return Layout{}
	}

	var es []edge
	var kept []Edge
	seen := make(map[edge]struct{}, len(edges))
	for _, e := range edges {
		f, okf := index[e.From]
		t, okt := index[e.To]
		if !okf || !okt || f == t {
			continue
		}
		k := edge{f, t}
		if _, dup := seen[k]; dup {
			continue
		}
		seen[k] = struct{}{}
		es = append(es, k)
		kept = append(kept, e)
	}

	n := len(uniq)
	reversed := breakCycles(n, es)
	dag := make([]edge, len(es))
	for i, e := range es {
		if reversed[i] {
			e.from, e.to = e.to, e.from
		}
		dag[i] = e
	}
	layer := assignLayers(n, dag)

	g := buildGraph(uniq, layer, dag)
	g.initialOrder()
	work := len(g.layer) + len(g.up)
	g.reduceCrossings(min(opt.Sweeps, workBudget/work))
	colX, colW := g.columns(opt.LayerGap, opt.Margin)
	shift, height := g.placeVertically(opt.NodeGap, opt.Margin)

	out := Layout{
		Width:  colX[len(colX)-1] + colW[len(colW)-1] + opt.Margin,
		Height: height,
		Nodes:  make([]PlacedNode, n),
		Edges:  make([]PlacedEdge, len(es)),
	}
	for v, nd := range uniq {
		out.Nodes[v] = PlacedNode{
			Node:  nd,
			X:     colX[g.layer[v]],
			Y:     g.y[v] - nd.Height/2 + shift,
			Layer: g.layer[v],
		}
	}
	for i, e := range kept {
		chain := g.chain(i)
		pts := make([]Point, len(chain))
		last := len(chain) - 1
		for j, v := range chain {
			l := g.layer[v]
			switch j {
			case 0:
				pts[j] = Point{colX[l] + uniq[v].Width, g.y[v] + shift}
			case last:
				pts[j] = Point{colX[l], g.y[v] + shift}
			default:
				pts[j] = Point{colX[l] + colW[l]/2, g.y[v] + shift}
			}
		}
		if reversed[i] {
			slices.Reverse(pts)
		}
		out.Edges[i] = PlacedEdge{From: e.From, To: e.To, Points: pts, Reversed: reversed[i]}
	}
	return out
}

func (o Options) withDefaults() Options {
	o.LayerGap = orDefault(o.LayerGap, DefaultLayerGap)
	o.NodeGap = orDefault(o.NodeGap, DefaultNodeGap)
	o.Margin = orDefault(o.Margin, DefaultMargin)
	switch {
	case o.Sweeps == 0:
		o.Sweeps = DefaultSweeps
	case o.Sweeps < 0:
		o.Sweeps = 0
	}
	return o
}

func orDefault(v, def float64) float64 {
	switch {
	case v == 0:
		return def
	case v < 0 || math.IsNaN(v) || math.IsInf(v, 0):
		return 0
	}
	return v
}

// size clamps a box dimension to a finite, non-negative value.
func size(v float64) float64 {
	if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// csr builds compressed adjacency lists over n vertices: the neighbours of v
// are adj[start[v]:start[v+1]], in the order of the pairs.
func csr(n int, pairs []edge) (start, adj []int) {
	start = make([]int, n+1)
	for _, p := range pairs {
		start[p.from+1]++
	}
	for v := 0; v < n; v++ {
		start[v+1] += start[v]
	}
	adj = make([]int, len(pairs))
	next := slices.Clone(start[:n])
	for _, p := range pairs {
		adj[next[p.from]] = p.to
		next[p.from]++
	}
	return start, adj
}

// breakCycles reports, for each edge, whether it is a back edge of a
// depth-first search that starts from the nodes in input order and follows
// edges in input order. Reversing those edges leaves an acyclic graph.
func breakCycles(n int, es []edge) []bool {
	ids := make([]edge, len(es)) // node -> edge index
	for i, e := range es {
		ids[i] = edge{e.from, i}
	}
	start, adj := csr(n, ids)
	const (
		white = iota
		grey
		black
	)
	state := make([]uint8, n)
	rev := make([]bool, len(es))
	type frame struct{ v, next int }
	var stack []frame
	for s := 0; s < n; s++ {
		if state[s] != white {
			continue
		}
		state[s] = grey
		stack = append(stack, frame{s, start[s]})
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.next == start[top.v+1] {
				state[top.v] = black
				stack = stack[:len(stack)-1]
				continue
			}
			ei := adj[top.next]
			top.next++
			switch w := es[ei].to; state[w] {
			case white:
				state[w] = grey
				stack = append(stack, frame{w, start[w]})
			case grey:
				rev[ei] = true
			}
		}
	}
	return rev
}

// assignLayers gives each node of the acyclic graph a layer such that every
// edge goes to a strictly higher layer. Layers are dense: each of 0..max holds
// at least one node.
func assignLayers(n int, dag []edge) []int {
	outStart, out := csr(n, dag)
	rdag := make([]edge, len(dag))
	for i, e := range dag {
		rdag[i] = edge{e.to, e.from}
	}
	inStart, in := csr(n, rdag)

	// Longest path from the sources, in a topological order (Kahn, FIFO,
	// seeded in input order).
	layer := make([]int, n)
	indeg := make([]int, n)
	order := make([]int, 0, n)
	for v := 0; v < n; v++ {
		indeg[v] = inStart[v+1] - inStart[v]
		if indeg[v] == 0 {
			order = append(order, v)
		}
	}
	for i := 0; i < len(order); i++ {
		u := order[i]
		for _, v := range out[outStart[u]:outStart[u+1]] {
			layer[v] = max(layer[v], layer[u]+1)
			if indeg[v]--; indeg[v] == 0 {
				order = append(order, v)
			}
		}
	}

	// Shorten edges: a node with more outgoing than incoming edges moves
	// right, next to its nearest successor; one with more incoming edges
	// moves left, next to its farthest predecessor. Each move lowers the
	// total edge length, so this ends; the pass count is bounded anyway.
	for pass := 0; pass < balancePasses; pass++ {
		changed := false
		for _, v := range order {
			preds, succs := in[inStart[v]:inStart[v+1]], out[outStart[v]:outStart[v+1]]
			switch {
			case len(succs) > len(preds):
				m := math.MaxInt
				for _, w := range succs {
					m = min(m, layer[w]-1)
				}
				if m > layer[v] {
					layer[v], changed = m, true
				}
			case len(preds) > len(succs):
				m := 0
				for _, w := range preds {
					m = max(m, layer[w]+1)
				}
				if m < layer[v] {
					layer[v], changed = m, true
				}
			}
		}
		if !changed {
			break
		}
	}

	// Renumber the used layers densely.
	top := 0
	for _, l := range layer {
		top = max(top, l)
	}
	rank := make([]int, top+1)
	for _, l := range layer {
		rank[l] = 1
	}
	next := 0
	for l, used := range rank {
		rank[l] = next
		next += used
	}
	for v, l := range layer {
		layer[v] = rank[l]
	}
	return layer
}

// graph is the proper layered graph: the real nodes (vertices 0..n-1) plus a
// dummy vertex wherever an edge crosses a layer, so that every segment joins
// two adjacent layers.
type graph struct {
	n      int
	width  []float64 // of the real nodes
	height []float64 // of every vertex; 0 for dummies
	layer  []int     // of every vertex
	layers [][]int   // vertices of each layer, in order
	pos    []int     // index of each vertex in its layer
	y      []float64 // centre of each vertex

	// Neighbours of each vertex in the layer above (up, layer-1) and below
	// (down, layer+1), in compressed form.
	upStart, up     []int
	downStart, down []int

	// The vertices of edge i, from the tail to the head of its acyclic
	// version, are chains[chainStart[i]:chainStart[i+1]].
	chainStart, chains []int
}

func buildGraph(nodes []Node, layer []int, dag []edge) *graph {
	n := len(nodes)
	g := &graph{n: n, width: make([]float64, n), height: make([]float64, n)}
	g.layer = slices.Clone(layer)
	for v, nd := range nodes {
		g.width[v], g.height[v] = nd.Width, nd.Height
	}
	var segs []edge
	g.chainStart = make([]int, 0, len(dag)+1)
	for _, e := range dag {
		g.chainStart = append(g.chainStart, len(g.chains))
		g.chains = append(g.chains, e.from)
		prev := e.from
		for l := layer[e.from] + 1; l < layer[e.to]; l++ {
			d := len(g.layer)
			g.layer = append(g.layer, l)
			g.height = append(g.height, 0)
			g.chains = append(g.chains, d)
			segs = append(segs, edge{prev, d})
			prev = d
		}
		g.chains = append(g.chains, e.to)
		segs = append(segs, edge{prev, e.to})
	}
	g.chainStart = append(g.chainStart, len(g.chains))

	total := len(g.layer)
	g.downStart, g.down = csr(total, segs)
	for i, s := range segs {
		segs[i] = edge{s.to, s.from}
	}
	g.upStart, g.up = csr(total, segs)

	nl := 0
	for _, l := range g.layer {
		nl = max(nl, l+1)
	}
	g.layers = make([][]int, nl)
	g.pos = make([]int, total)
	g.y = make([]float64, total)
	return g
}

func (g *graph) chain(i int) []int { return g.chains[g.chainStart[i]:g.chainStart[i+1]] }

func (g *graph) upOf(v int) []int   { return g.up[g.upStart[v]:g.upStart[v+1]] }
func (g *graph) downOf(v int) []int { return g.down[g.downStart[v]:g.downStart[v+1]] }

// initialOrder fills the layers in depth-first order from the real nodes,
// taken by layer and then input order, so that connected vertices start
// close together.
func (g *graph) initialOrder() {
	starts := make([]int, g.n)
	for v := range starts {
		starts[v] = v
	}
	slices.SortStableFunc(starts, func(a, b int) int { return g.layer[a] - g.layer[b] })
	visited := make([]bool, len(g.layer))
	var stack []int
	for _, s := range starts {
		if visited[s] {
			continue
		}
		visited[s] = true
		stack = append(stack[:0], s)
		for len(stack) > 0 {
			v := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			l := g.layer[v]
			g.pos[v] = len(g.layers[l])
			g.layers[l] = append(g.layers[l], v)
			ds := g.downOf(v)
			for i := len(ds) - 1; i >= 0; i-- { // pushed backwards, visited forwards
				if w := ds[i]; !visited[w] {
					visited[w] = true
					stack = append(stack, w)
				}
			}
		}
	}
}

// reduceCrossings runs barycenter sweeps, each a pass down the layers then a
// pass up, every pass followed by a round of neighbour swaps (transpose), and
// keeps the order with the fewest crossings seen. It stops early when the
// drawing has no crossing or a sweep changes nothing.
func (g *graph) reduceCrossings(sweeps int) {
	best := g.crossings()
	if best == 0 || sweeps == 0 {
		return
	}
	saved := make([]int, len(g.layer))
	save := func() {
		i := 0
		for _, vs := range g.layers {
			i += copy(saved[i:], vs)
		}
	}
	save()
	var rs reorderScratch
	var ts transposeScratch
	for s := 0; s < sweeps && best > 0; s++ {
		changed := false
		for l := 1; l < len(g.layers); l++ {
			changed = g.reorder(l, g.upStart, g.up, &rs) || changed
		}
		for l := 0; l < len(g.layers); l++ {
			changed = g.transpose(l, &ts) || changed
		}
		if c := g.crossings(); c < best {
			best = c
			save()
		}
		if best == 0 {
			break
		}
		for l := len(g.layers) - 2; l >= 0; l-- {
			changed = g.reorder(l, g.downStart, g.down, &rs) || changed
		}
		for l := len(g.layers) - 1; l >= 0; l-- {
			changed = g.transpose(l, &ts) || changed
		}
		if c := g.crossings(); c < best {
			best = c
			save()
		}
		if !changed {
			break
		}
	}
	i := 0
	for _, vs := range g.layers {
		i += copy(vs, saved[i:])
		for p, v := range vs {
			g.pos[v] = p
		}
	}
}

type reorderScratch struct {
	keys []uint64
	old  []int
}

// reorder sorts layer l by the barycenter of each vertex's neighbours in the
// adjacent layer given by start/adj. Vertices without such neighbours keep
// their slot; ties keep their current order. It reports whether the order
// changed.
func (g *graph) reorder(l int, start, adj []int, rs *reorderScratch) bool {
	vs := g.layers[l]
	// Each key packs the barycenter, as a float32 (whose bits order like
	// the non-negative numbers they encode), above the current position, so
	// that a plain integer sort orders by barycenter then position.
	keys := rs.keys[:0]
	for i, v := range vs {
		nb := adj[start[v]:start[v+1]]
		if len(nb) == 0 {
			continue
		}
		sum := 0
		for _, u := range nb {
			sum += g.pos[u]
		}
		bary := float32(float64(sum) / float64(len(nb)))
		keys = append(keys, uint64(math.Float32bits(bary))<<32|uint64(i))
	}
	rs.keys = keys
	if slices.IsSorted(keys) {
		return false
	}
	slices.Sort(keys)
	old := append(rs.old[:0], vs...)
	rs.old = old
	j := 0
	for i, v := range old {
		if start[v] == start[v+1] {
			continue
		}
		w := old[uint32(keys[j])]
		vs[i], g.pos[w] = w, i
		j++
	}
	return true
}

// transpose swaps neighbouring vertices of layer l while a swap lowers the
// crossings of their segments, on both sides, for at most transposeRounds
// rounds. It reports whether anything moved.
func (g *graph) transpose(l int, ts *transposeScratch) bool {
	vs := g.layers[l]
	if len(vs) < 2 {
		return false
	}
	// The sorted positions of each vertex's neighbours above and below;
	// they do not change while layer l is reordered.
	size := 0
	for _, v := range vs {
		size += len(g.upOf(v)) + len(g.downOf(v))
	}
	buf := slices.Grow(ts.buf[:0], size)
	ups, downs := ts.ups[:0], ts.downs[:0]
	for _, v := range vs {
		for side, nb := range [2][]int{g.upOf(v), g.downOf(v)} {
			from := len(buf)
			for _, w := range nb {
				buf = append(buf, g.pos[w])
			}
			ps := buf[from:len(buf):len(buf)]
			if len(ps) > 1 {
				slices.Sort(ps)
			}
			if side == 0 {
				ups = append(ups, ps)
			} else {
				downs = append(downs, ps)
			}
		}
	}
	ts.buf, ts.ups, ts.downs = buf, ups, downs

	moved := false
	for r := 0; r < transposeRounds; r++ {
		improved := false
		for i := 0; i+1 < len(vs); i++ {
			gtUp, ltUp := pairCrossings(ups[i], ups[i+1])
			gtDown, ltDown := pairCrossings(downs[i], downs[i+1])
			if ltUp+ltDown < gtUp+gtDown {
				u, v := vs[i], vs[i+1]
				vs[i], vs[i+1] = v, u
				g.pos[u], g.pos[v] = i+1, i
				ups[i], ups[i+1] = ups[i+1], ups[i]
				downs[i], downs[i+1] = downs[i+1], downs[i]
				improved = true
			}
		}
		if !improved {
			break
		}
		moved = true
	}
	return moved
}

type transposeScratch struct {
	buf        []int
	ups, downs [][]int
}

// pairCrossings takes the sorted neighbour positions p of a vertex and q of
// the vertex just below it, on one side. It returns the crossings between
// their segments as they stand (gt) and once the two are swapped (lt).
func pairCrossings(p, q []int) (gt, lt int) {
	if len(p) == 0 || len(q) == 0 {
		return 0, 0
	}
	less, lessEq := 0, 0 // elements of q below a, and below or at a
	for _, a := range p {
		for less < len(q) && q[less] < a {
			less++
		}
		lessEq = max(lessEq, less)
		for lessEq < len(q) && q[lessEq] <= a {
			lessEq++
		}
		gt += less
		lt += len(q) - lessEq
	}
	return gt, lt
}

// crossings counts the pairs of crossing segments between adjacent layers,
// in O(E log V) with a Fenwick tree (Barth, Jünger and Mutzel).
func (g *graph) crossings() int {
	total := 0
	var tree, ps []int
	for l := 0; l+1 < len(g.layers); l++ {
		size := len(g.layers[l+1])
		tree = slices.Grow(tree[:0], size+1)[:size+1]
		clear(tree)
		inserted := 0
		for _, u := range g.layers[l] {
			ps = ps[:0]
			for _, w := range g.downOf(u) {
				ps = append(ps, g.pos[w])
			}
			if len(ps) > 1 {
				slices.Sort(ps)
			}
			for _, p := range ps {
				le := 0 // inserted positions <= p
				for i := p + 1; i > 0; i -= i & -i {
					le += tree[i]
				}
				total += inserted - le
				for i := p + 1; i <= size; i += i & -i {
					tree[i]++
				}
				inserted++
			}
		}
	}
	return total
}

// columns returns the left edge and the width of each layer's column.
func (g *graph) columns(gap, margin float64) (x, w []float64) {
	x = make([]float64, len(g.layers))
	w = make([]float64, len(g.layers))
	for v := 0; v < g.n; v++ {
		l := g.layer[v]
		w[l] = max(w[l], g.width[v])
	}
	x[0] = margin
	for l := 1; l < len(x); l++ {
		x[l] = x[l-1] + w[l-1] + gap
	}
	return x, w
}

// segWeight is how much a segment wants to be horizontal: long edges, made of
// dummies, should run straight.
func (g *graph) segWeight(u, v int) float64 {
	switch du, dv := u >= g.n, v >= g.n; {
	case du && dv:
		return 8
	case du || dv:
		return 2
	}
	return 1
}

// placeVertically sets g.y, the centre of each vertex. Each layer starts
// stacked and centred on 0; then rounds of passes down and up the layers move
// each layer, as a whole, to the positions that minimise the weighted squared
// vertical length of its segments while keeping the layer's order and gaps.
// It returns the shift that brings the top of the drawing to the margin, and
// the height of the drawing.
func (g *graph) placeVertically(gap, margin float64) (shift, height float64) {
	for _, vs := range g.layers {
		total := -gap
		for _, v := range vs {
			total += g.height[v] + gap
		}
		y := -total / 2
		for _, v := range vs {
			g.y[v] = y + g.height[v]/2
			y += g.height[v] + gap
		}
	}

	var target, weight, offset []float64
	var blocks []block
	align := func(vs []int) {
		target, weight, offset = target[:0], weight[:0], offset[:0]
		off := 0.0
		for i, v := range vs {
			if i > 0 {
				off += (g.height[vs[i-1]]+g.height[v])/2 + gap
			}
			sum, ws := 0.0, 0.0
			for _, u := range g.upOf(v) {
				w := g.segWeight(u, v)
				sum, ws = sum+w*g.y[u], ws+w
			}
			for _, u := range g.downOf(v) {
				w := g.segWeight(v, u)
				sum, ws = sum+w*g.y[u], ws+w
			}
			if ws == 0 {
				sum, ws = looseWeight*g.y[v], looseWeight
			}
			target = append(target, sum/ws-off)
			weight = append(weight, ws)
			offset = append(offset, off)
		}
		blocks = isotonic(target, weight, blocks[:0])
		for i, v := range vs {
			g.y[v] = target[i] + offset[i]
		}
	}
	rounds := min(alignRounds, max(1, workBudget/(len(g.layer)+len(g.up))))
	for r := 0; r < rounds; r++ {
		for l := 0; l < len(g.layers); l++ {
			align(g.layers[l])
		}
		for l := len(g.layers) - 1; l >= 0; l-- {
			align(g.layers[l])
		}
	}

	top, bottom := math.Inf(1), math.Inf(-1)
	for v, y := range g.y {
		top = min(top, y-g.height[v]/2)
		bottom = max(bottom, y+g.height[v]/2)
	}
	shift = margin - top
	return shift, bottom + shift + margin
}

type block struct {
	sum, weight float64 // of weight*target, of weight
	n           int
}

// isotonic replaces z by the non-decreasing sequence closest to it in
// weighted least squares (pool adjacent violators). It reuses blocks as
// scratch space and returns it.
func isotonic(z, w []float64, blocks []block) []block {
	for i := range z {
		b := block{w[i] * z[i], w[i], 1}
		for len(blocks) > 0 {
			p := blocks[len(blocks)-1]
			if p.sum/p.weight <= b.sum/b.weight {
				break
			}
			b = block{p.sum + b.sum, p.weight + b.weight, p.n + b.n}
			blocks = blocks[:len(blocks)-1]
		}
		blocks = append(blocks, b)
	}
	i := 0
	for _, b := range blocks {
		m := b.sum / b.weight
		for k := 0; k < b.n; k++ {
			z[i] = m
			i++
		}
	}
	return blocks
}

// Path returns an SVG path "d" attribute for the edge: smooth cubic Bézier
// segments through its Points, leaving and entering every point
// horizontally. Numbers have at most one decimal. It returns "" for an edge
// without points.
func (e PlacedEdge) Path() string {
	if len(e.Points) == 0 {
		return ""
	}
	var b strings.Builder
	b.Grow(16 + 40*len(e.Points))
	b.WriteByte('M')
	writePoint(&b, e.Points[0].X, e.Points[0].Y)
	for i := 1; i < len(e.Points); i++ {
		p, q := e.Points[i-1], e.Points[i]
		mx := (p.X + q.X) / 2
		b.WriteString(" C")
		writePoint(&b, mx, p.Y)
		b.WriteByte(' ')
		writePoint(&b, mx, q.Y)
		b.WriteByte(' ')
		writePoint(&b, q.X, q.Y)
	}
	return b.String()
}

func writePoint(b *strings.Builder, x, y float64) {
	b.WriteString(num(x))
	b.WriteByte(',')
	b.WriteString(num(y))
}

// num formats v with at most one decimal: 12, 12.5, -3.2.
func num(v float64) string {
	s := strconv.FormatFloat(v, 'f', 1, 64)
	s = strings.TrimSuffix(s, ".0")
	if s == "-0" {
		s = "0"
	}
	return s
}
