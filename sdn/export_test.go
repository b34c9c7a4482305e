package sdn

// IsHome reports whether r is the home node of ch (holds its source).
func IsHome(r *Router, ch uint64) bool {
	_, ok := r.ps.homes[ch]
	return ok
}

// ScopedMap reports what r holds of the scoped map name: whether it keeps
// any state of it, how many entries of other owners it stores (staged
// parts included), and whether it is the map's home by its own routes.
func ScopedMap(r *Router, name string) (held bool, stored int, home bool) {
	home = r.kv.isHomeKey(nameKey(name))
	s := r.kv.sc.maps[name]
	if s == nil {
		return false, 0, home
	}
	for _, o := range s.owners {
		stored += len(o.ents)
		if o.stage != nil {
			stored += len(o.stage.ents)
		}
	}
	return true, stored, home
}

// ScopedEntries is how many entries of other owners r stores of all
// scoped maps together (what Config.MaxScopedEntries bounds).
func ScopedEntries(r *Router) int { return r.kv.sc.nents }
