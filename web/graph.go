package web

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/a-h/templ"

	"github.com/slipway-ml/slipway/internal/graphlayout"
	"github.com/slipway-ml/slipway/internal/lineage"
)

// GraphView is a lineage graph laid out for drawing as SVG.
type GraphView struct {
	Graph  lineage.Graph
	Width  float64
	Height float64
	Nodes  []graphNode
	Edges  []graphEdge
}

type graphNode struct {
	lineage.Node
	X, Y, W, H float64
	Root       bool
}

type graphEdge struct {
	Path     string
	Reversed bool
}

const (
	nodeHeight  = 46
	maxLabelLen = 30
)

// newGraphView lays a graph out left to right, data flowing rightwards.
func newGraphView(g lineage.Graph) GraphView {
	nodes := make([]graphlayout.Node, len(g.Nodes))
	for i, n := range g.Nodes {
		nodes[i] = graphlayout.Node{ID: n.ID, Width: nodeWidth(n), Height: nodeHeight}
	}
	edges := make([]graphlayout.Edge, len(g.Edges))
	for i, e := range g.Edges {
		edges[i] = graphlayout.Edge{From: e.From, To: e.To}
	}
	l := graphlayout.Layered(nodes, edges, graphlayout.Options{LayerGap: 56, NodeGap: 16})
	v := GraphView{Graph: g, Width: l.Width, Height: l.Height}
	for i, pn := range l.Nodes {
		v.Nodes = append(v.Nodes, graphNode{Node: g.Nodes[i], X: pn.X, Y: pn.Y, W: pn.Width, H: pn.Height, Root: g.Nodes[i].ID == g.Root})
	}
	for _, pe := range l.Edges {
		v.Edges = append(v.Edges, graphEdge{Path: pe.Path(), Reversed: pe.Reversed})
	}
	return v
}

// nodeWidth fits the label (13px, bold) and the kind line (10px).
func nodeWidth(n lineage.Node) float64 {
	label := min(utf8.RuneCountInString(n.Label), maxLabelLen)
	kind := utf8.RuneCountInString(graphNode{Node: n}.kindLabel())
	return float64(max(120, 8*label+28, 7*kind+28))
}

func (n graphNode) label() string { return truncate(n.Label, maxLabelLen) }

// kindLabel is the small heading of a node.
func (n graphNode) kindLabel() string {
	switch n.Kind {
	case lineage.KindDatasetVersion:
		return "DATASET · " + n.Detail
	case lineage.KindRun:
		return "RUN · " + n.Detail
	}
	return "MODEL · " + n.Detail
}

// class styles the node by kind, and marks problems.
func (n graphNode) class() string {
	c := "node node-" + n.Kind
	if n.Root {
		c += " node-root"
	}
	switch {
	case n.Kind == lineage.KindDatasetVersion && n.Status == lineage.QualityFailed,
		n.Kind == lineage.KindRun && (n.Status == lineage.RunFailed || n.Status == lineage.RunAborted):
		c += " node-bad"
	}
	return c
}

func (n graphNode) title() string {
	return fmt.Sprintf("%s (%s)", n.Label, n.Status)
}

// summary names the graph for a screen reader: each node is a link of its
// own, named by its title.
func (v GraphView) summary() string {
	return fmt.Sprintf("Lineage graph, %s of %s to depth %d: %d nodes, %d edges", v.Graph.Direction, v.Graph.Root, v.Graph.Depth, len(v.Nodes), len(v.Edges))
}

// lineageNodeAttrs points the explorer's node field at its problem.
func lineageNodeAttrs(invalid bool) templ.Attributes {
	if !invalid {
		return nil
	}
	return templ.Attributes{"aria-invalid": "true", "aria-describedby": "lineage-error"}
}

// nodeURL is the page of a node.
func nodeURL(n lineage.Node) string {
	switch n.Kind {
	case lineage.KindDatasetVersion:
		return fmt.Sprintf("/datasets/%s/versions/%d", url.PathEscape(n.Name), n.Version)
	case lineage.KindRun:
		return "/runs/" + strconv.FormatInt(n.RunID, 10)
	}
	return fmt.Sprintf("/models/%s/versions/%d", url.PathEscape(n.Name), n.Version)
}

// explorerURL opens the lineage explorer on a node.
func explorerURL(node, direction string, depth int) string {
	q := url.Values{"node": {node}, "direction": {direction}, "depth": {strconv.Itoa(depth)}}
	return "/lineage?" + q.Encode()
}

func f1(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) }

// sortedKeys lists a map's keys in order, for stable pages.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
