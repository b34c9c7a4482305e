// Package piontest builds pion/webrtc peers for the tests that use pion as
// a real WebRTC client of the SFU: one place for the loopback settings
// every such test needs.
package piontest

import (
	"net"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	pion "github.com/pion/webrtc/v4"
)

// Options shape a pion API.
type Options struct {
	// Network is the only candidate network type (default UDP4).
	Network pion.NetworkType
	// Conn, when set, is the one UDP socket ICE uses (a wrapper that cuts
	// or drops traffic, say).
	Conn net.PacketConn
	// TWCC makes the client send transport-wide sequence numbers, as
	// browsers do.
	TWCC bool
}

// API returns a pion API with the default codecs and interceptors, whose
// ICE gathers loopback host candidates only, without mDNS.
func API(o Options) (*pion.API, error) {
	var se pion.SettingEngine
	if o.Network == 0 {
		o.Network = pion.NetworkTypeUDP4
	}
	se.SetNetworkTypes([]pion.NetworkType{o.Network})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if o.Conn != nil {
		se.SetICEUDPMux(ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: o.Conn}))
	}
	me := &pion.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if err := pion.RegisterDefaultInterceptors(me, ir); err != nil {
		return nil, err
	}
	if o.TWCC {
		if err := pion.ConfigureTWCCHeaderExtensionSender(me, ir); err != nil {
			return nil, err
		}
	}
	return pion.NewAPI(pion.WithSettingEngine(se), pion.WithMediaEngine(me), pion.WithInterceptorRegistry(ir)), nil
}
