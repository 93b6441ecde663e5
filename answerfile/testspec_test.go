package answerfile

import (
	"github.com/pxekit/pxekit/internal/osid"
)

// zeroReader makes plaintext-password salts deterministic in goldens.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

const testKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBnYqTHwCzDJ8X7a0m4i0S0pDhx8qV4lQj3Zk8wq5x3v ops@example"

// fullSpec exercises every customization the target family supports.
func fullSpec(info osid.Info, scheme string) *Spec {
	s := &Spec{
		Hostname: "web01.example.com",
		Timezone: "Asia/Shanghai",
		Locale:   "en_US.UTF-8",
		Keyboard: "us",
		Mirror:   "http://mirror.example.com/" + info.Distro + "/",
		Root: Root{
			Password: Password{Plain: "root-secret"},
			SSHKeys:  []string{testKey},
			AllowSSH: true,
		},
		Users: []User{
			{Name: "ops", FullName: "Ops Team", Password: Password{Plain: "ops-secret"}, Groups: []string{"docker"}, Sudo: true, SSHKeys: []string{testKey}},
			{Name: "deploy", SudoNoPassword: true, SSHKeys: []string{testKey}, Shell: "/bin/bash"},
		},
		Network: Network{Mode: "static", Device: "ens192", Address: "192.0.2.10/24", Gateway: "192.0.2.1", DNS: []string{"192.0.2.53", "192.0.2.54"}, Domain: "example.com"},
		Disk:    Disk{Device: "sda", Wipe: true},
		Packages: Packages{
			Names:   []string{"curl", "rsync", "tmux"},
			Exclude: []string{"nano"},
		},
		Post: []Step{
			{Enable: []string{"chronyd"}},
			{Disable: []string{"kdump"}},
			{Prompt: "cyan"},
			{Aliases: []Alias{{Name: "ll", Command: "ls -alF"}, {Name: "k", Command: "kubectl"}}},
			{File: &File{Path: "/etc/motd", Content: "Managed by pxekit.\n"}},
			{File: &File{Path: "/opt/app/token", Content: "no-newline", Mode: "0600", Owner: "deploy"}},
			{Sysctl: []Sysctl{{Key: "net.ipv4.ip_forward", Value: "1"}, {Key: "vm.swappiness", Value: "10"}}},
			{Shell: "echo 'custom step' \\\n\t> /root/custom.txt\nexit 0\n"},
		},
		Finish:   "poweroff",
		Callback: Callback{URL: "http://192.0.2.1:8080/pxekit/done?host=web01", Events: true},
	}
	if scheme == SchemeLVM {
		s.Layout = Layout{
			Scheme:     SchemeLVM,
			Partitions: []Volume{{Mount: "/boot/efi", Size: 512}, {Mount: "/boot", Size: 2048}},
			LVM: LVM{VG: "sysvg", Volumes: []Volume{
				{Mount: "swap", Size: 8192},
				{Mount: "/var/log", Size: 10240, Name: "log"},
				{Mount: "/home", Size: 20480},
				{Mount: "/", Size: 20480, Grow: true},
			}},
		}
	} else {
		s.Layout = Layout{Scheme: SchemePlain, Partitions: []Volume{
			{Mount: "/boot/efi", Size: 512}, {Mount: "/boot", Size: 2048}, {Mount: "swap", Size: 8192},
			{Mount: "/var", Size: 30720}, {Mount: "/", Size: 20480, Grow: true},
		}}
	}
	switch {
	case info.Family == osid.Anaconda && isELClone(info):
		s.Packages.Groups = []string{"core", "development"}
		s.Repos = []Repo{{Preset: PresetEPEL}, {Preset: PresetNginx}, {Preset: PresetDockerCE}}
		s.Packages.Names = append(s.Packages.Names, "nginx", "docker-ce")
	case info.Family == osid.Anaconda:
		s.Repos = []Repo{{Name: "local-extras", BaseURL: "http://mirror.example.com/extras/$basearch/", GPGKey: "http://mirror.example.com/extras/RPM-GPG-KEY"}}
		s.Post[0].Enable = []string{"sshd"}
		s.Post[1].Disable = []string{"firewalld"}
	default:
		s.Repos = []Repo{{Preset: PresetNginx}, {Preset: PresetDockerCE}}
		s.Packages.Names = append(s.Packages.Names, "nginx", "docker-ce")
		s.Packages.Groups = []string{"standard", "ssh-server"}
		s.Post[0].Enable = []string{"ssh"}
		s.Post[1].Disable = []string{"apparmor"}
		if info.Family == osid.Subiquity {
			s.Packages.Groups = nil
			if info.Major < 22 {
				s.Finish = "reboot"
			}
		}
	}
	return s
}

const testKey2 = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEx2oZ0pTvbUIi5u7CEZQfVPa0a9Qd5d1ECc8mIvWTtY3FCOHqHc8l1Zr6hD0z6l4vR+2N3nYfWzgk4pVHu1G8I= backup@example"

// offlineSpec is fullSpec with the rest of the fields: offline with NTP
// servers, disk selectors instead of a device name, several keys per
// account and a third user without a password.
func offlineSpec(info osid.Info, scheme string) *Spec {
	s := fullSpec(info, scheme)
	s.Offline = true
	s.Network.Gateway = "" // an isolated install network: no router
	s.NTP = []string{"ntp1.example.com", "192.0.2.123"}
	s.Disk = Disk{Serial: "S4EWNX0R123456", MinGiB: 100, MaxGiB: 2000, Wipe: true}
	s.Root.SSHKeys = append(s.Root.SSHKeys, testKey2)
	for i := range s.Users {
		s.Users[i].SSHKeys = append(s.Users[i].SSHKeys, testKey2)
	}
	s.Users = append(s.Users, User{Name: "audit", FullName: "Audit", Groups: []string{"adm"}, SSHKeys: []string{testKey2}, Shell: "/bin/sh"})
	s.Users[0].Sudo = false
	s.Users[0].Shell = "/usr/bin/zsh"
	s.Packages.Names = append(s.Packages.Names, "zsh")
	s.Timezone = "Europe/Berlin"
	return s
}
