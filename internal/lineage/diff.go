package lineage

import (
	"fmt"
	"sort"
)

// Retyped is a column whose type changed between two versions.
type Retyped struct {
	Name string `json:"name"`
	From string `json:"from"`
	To   string `json:"to"`
}

// CountDelta compares a count of two versions; nil ends are unknown.
type CountDelta struct {
	From  *int64   `json:"from"`
	To    *int64   `json:"to"`
	Delta *int64   `json:"delta"`
	Ratio *float64 `json:"ratio"` // (to - from) / from, when from > 0
}

// StatDelta compares one statistic of one column.
type StatDelta struct {
	Column string   `json:"column"`
	Stat   string   `json:"stat"`
	From   any      `json:"from"`
	To     any      `json:"to"`
	Delta  *float64 `json:"delta"` // for numbers
	Ratio  *float64 `json:"ratio"` // delta / |from|, when from is a non-zero number
}

// VersionDiff is what changed from one dataset version to another.
type VersionDiff struct {
	From           DatasetVersion `json:"from"`
	To             DatasetVersion `json:"to"`
	ColumnsAdded   []Column       `json:"columns_added"`
	ColumnsRemoved []Column       `json:"columns_removed"`
	ColumnsRetyped []Retyped      `json:"columns_retyped"`
	RowCount       CountDelta     `json:"row_count"`
	Size           CountDelta     `json:"size"`
	// Statistics lists the statistics that differ, or exist on one side
	// only.
	Statistics  []StatDelta `json:"statistics"`
	SameContent bool        `json:"same_content"` // both have the same content hash
}

// Diff compares two versions of datasets (usually of one dataset).
func Diff(from, to DatasetVersion) VersionDiff {
	d := VersionDiff{From: from, To: to, ColumnsAdded: []Column{}, ColumnsRemoved: []Column{}, ColumnsRetyped: []Retyped{}, Statistics: []StatDelta{}}
	before := map[string]Column{}
	for _, c := range from.Schema {
		before[c.Name] = c
	}
	after := map[string]bool{}
	for _, c := range to.Schema {
		after[c.Name] = true
		old, ok := before[c.Name]
		switch {
		case !ok:
			d.ColumnsAdded = append(d.ColumnsAdded, c)
		case old.Type != c.Type:
			d.ColumnsRetyped = append(d.ColumnsRetyped, Retyped{Name: c.Name, From: old.Type, To: c.Type})
		}
	}
	for _, c := range from.Schema {
		if !after[c.Name] {
			d.ColumnsRemoved = append(d.ColumnsRemoved, c)
		}
	}
	d.RowCount = countDelta(from.RowCount, to.RowCount)
	d.Size = countDelta(from.Size, to.Size)
	d.SameContent = from.SHA256 != nil && to.SHA256 != nil && *from.SHA256 == *to.SHA256
	cols := map[string]bool{}
	for c := range from.Statistics {
		cols[c] = true
	}
	for c := range to.Statistics {
		cols[c] = true
	}
	for _, col := range sortedKeys(cols) {
		a, b := from.Statistics[col], to.Statistics[col]
		names := map[string]bool{}
		for n := range a {
			names[n] = true
		}
		for n := range b {
			names[n] = true
		}
		for _, n := range sortedKeys(names) {
			x, inA := a[n]
			y, inB := b[n]
			if inA && inB && fmt.Sprint(x) == fmt.Sprint(y) {
				continue
			}
			sd := StatDelta{Column: col, Stat: n, From: x, To: y}
			fx, okx := x.(float64)
			fy, oky := y.(float64)
			if okx && oky {
				delta := fy - fx
				sd.Delta = &delta
				if fx != 0 {
					r := delta / abs(fx)
					sd.Ratio = &r
				}
			}
			d.Statistics = append(d.Statistics, sd)
		}
	}
	sort.SliceStable(d.ColumnsAdded, func(i, j int) bool { return d.ColumnsAdded[i].Name < d.ColumnsAdded[j].Name })
	sort.SliceStable(d.ColumnsRemoved, func(i, j int) bool { return d.ColumnsRemoved[i].Name < d.ColumnsRemoved[j].Name })
	sort.SliceStable(d.ColumnsRetyped, func(i, j int) bool { return d.ColumnsRetyped[i].Name < d.ColumnsRetyped[j].Name })
	return d
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

func countDelta(from, to *int64) CountDelta {
	c := CountDelta{From: from, To: to}
	if from != nil && to != nil {
		delta := *to - *from
		c.Delta = &delta
		if *from > 0 {
			r := float64(delta) / float64(*from)
			c.Ratio = &r
		}
	}
	return c
}
