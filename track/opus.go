package track

import "fmt"

var errOpusEmpty = fmt.Errorf("%w: empty opus payload", ErrBadDescriptor)

// parseOpus marks every Opus packet as a switching point: each Opus packet
// decodes on its own, so a subscriber may start anywhere.
func parseOpus(payload []byte, m *Meta) error {
	if len(payload) == 0 {
		return errOpusEmpty
	}
	m.Keyframe = true
	m.StartOfFrame = true
	return nil
}
