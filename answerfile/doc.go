// Package answerfile makes installs unattended: one distro-neutral, validated
// Spec (hostname, users, disk layout, packages, repositories, post-install
// steps) rendered to a kickstart for anaconda, Ubuntu autoinstall user-data
// for subiquity, or a preseed for debian-installer.
//
// Sketch:
//
//	out, err := answerfile.Render("rocky-9.0", answerfile.Kickstart, spec)
package answerfile
