package bootmenu

import "testing"

// BenchmarkRender measures rendering one install menu per loader, the work
// a TFTP server does per request when it renders per-host menus on demand.
func BenchmarkRender(b *testing.B) {
	m, err := InstallMenu("ubuntu-24.04", "ubuntu", testInput("ubuntu-24.04"))
	if err != nil {
		b.Fatal(err)
	}
	for _, k := range Kinds() {
		b.Run(string(k), func(b *testing.B) {
			for b.Loop() {
				if _, err := Render(m, k, Options{HTTPBase: testHTTP, GRUBDialect: GRUBEL9}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
