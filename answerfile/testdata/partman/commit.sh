# partman-base's commit.sh stand-in: the changes are confirmed.
confirm_changes() { return 0; }
commit_changes() { return 0; }
