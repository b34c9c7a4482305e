package sdn

// IsHome reports whether r is the home node of ch (holds its source).
func IsHome(r *Router, ch uint64) bool {
	_, ok := r.ps.homes[ch]
	return ok
}
