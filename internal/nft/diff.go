package nft

import (
	"encoding/binary"
	"slices"
	"strings"
)

// Changes are the element additions and deletions that turn one ruleset
// into another of the same skeleton (table, sets' types, chains, rules).
// Per-pod and per-policy state lives only in set elements (doc.go), so pod
// churn and policy edits are always such a change.
type Changes struct {
	// Sets lists, for each set of the new ruleset in order, what leaves and
	// what joins. A set with neither is left out.
	Sets []SetChanges
}

// SetChanges is the change to one set. Del holds elements of the old
// ruleset, Add elements of the new one. An element whose map value or
// comment changes is in both: deleted by its key, then added anew.
//
// Unreachable holds the elements of the old ruleset that the new one does
// not have but that can never match under it (their profile is no value of
// the set's ProfileMap): they may be deleted, or left in place at no cost
// to what the rules decide.
type SetChanges struct {
	Set         *Set // the new ruleset's set
	Del, Add    []Element
	Unreachable []Element
}

// Len is the number of elements added and deleted.
func (c *Changes) Len() int {
	n := 0
	for _, s := range c.Sets {
		n += len(s.Del) + len(s.Add)
	}
	return n
}

// IntervalDeletes is the number of elements deleted from interval sets.
func (c *Changes) IntervalDeletes() int {
	n := 0
	for _, s := range c.Sets {
		if s.Set.Interval {
			n += len(s.Del)
		}
	}
	return n
}

// Diff returns the element changes from old to new, or ok false when the
// two differ in more than elements, so that new must replace old whole.
func Diff(old, new *Ruleset) (c *Changes, ok bool) {
	if old == nil || new == nil || Skeleton(old) != Skeleton(new) {
		return nil, false
	}
	c = &Changes{}
	profiles := map[string]map[uint32]bool{} // map name → its values
	for _, s := range new.Sets {
		if s.ProfileMap != "" && profiles[s.ProfileMap] == nil {
			profiles[s.ProfileMap] = mapValues(new, s.ProfileMap)
		}
	}
	for i, ns := range new.Sets {
		os := old.Sets[i] // same names in the same order: the skeletons match
		had := make(map[string]int, len(os.Elements))
		for j, e := range os.Elements {
			had[elementID(e)] = j
		}
		var sc SetChanges
		kept := make([]bool, len(os.Elements))
		for _, e := range ns.Elements {
			if j, ok := had[elementID(e)]; ok {
				kept[j] = true
				continue
			}
			sc.Add = append(sc.Add, e)
		}
		live := profiles[ns.ProfileMap]
		for j, e := range os.Elements {
			switch {
			case kept[j]:
			case live != nil && len(e.Key) > 0 && !live[e.Key[0].Lo]:
				sc.Unreachable = append(sc.Unreachable, e)
			default:
				sc.Del = append(sc.Del, e)
			}
		}
		if len(sc.Add) > 0 || len(sc.Del) > 0 || len(sc.Unreachable) > 0 {
			sc.Set = ns
			c.Sets = append(c.Sets, sc)
		}
	}
	return c, true
}

// mapValues are the values of rs's map name (none if there is no such map).
func mapValues(rs *Ruleset, name string) map[uint32]bool {
	vs := map[uint32]bool{}
	for _, s := range rs.Sets {
		if s.Name == name && s.IsMap() {
			for _, e := range s.Elements {
				for v := e.Value.Lo; ; v++ {
					vs[v] = true
					if v >= e.Value.Hi {
						break
					}
				}
			}
		}
	}
	return vs
}

// Kept returns new with the Unreachable elements of c added back: what the
// kernel holds when c is applied without deleting them. It decides as new
// does (the elements added cannot match), and the next Diff starts from it.
func Kept(new *Ruleset, c *Changes) *Ruleset {
	held := *new
	held.Sets = slices.Clone(new.Sets)
	for _, sc := range c.Sets {
		if len(sc.Unreachable) == 0 {
			continue
		}
		for i, s := range held.Sets {
			if s.Name != sc.Set.Name {
				continue
			}
			kept := *s
			kept.Elements = append(slices.Clone(s.Elements), sc.Unreachable...)
			sortElements(kept.Elements)
			held.Sets[i] = &kept
		}
	}
	return &held
}

// Unreachable is the number of elements that c leaves in place.
func (c *Changes) Unreachable() int {
	n := 0
	for _, s := range c.Sets {
		n += len(s.Unreachable)
	}
	return n
}

// Skeleton renders everything of rs but its elements and comments on
// them: two rulesets with the same skeleton differ only in elements.
func Skeleton(rs *Ruleset) string {
	var b strings.Builder
	b.WriteString("table inet " + rs.Table + "\n")
	for _, s := range rs.Sets {
		bare := *s
		bare.Elements = nil
		renderSet(&b, &bare)
	}
	for _, c := range rs.Chains {
		renderChain(&b, c)
	}
	return b.String()
}

// elementID identifies an element with its value and comment: any change
// to one of them makes another element.
func elementID(e Element) string {
	b := make([]byte, 0, len(e.Key)*9+9+len(e.Comment))
	put := func(d Datum) {
		b = append(b, d.Name...)
		b = append(b, 0)
		b = binary.BigEndian.AppendUint32(b, d.Lo)
		b = binary.BigEndian.AppendUint32(b, d.Hi)
	}
	for _, d := range e.Key {
		put(d)
	}
	b = append(b, 1)
	put(e.Value)
	b = append(b, e.Comment...)
	return string(b)
}
