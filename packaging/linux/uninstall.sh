#!/usr/bin/env bash
# Remove what install.sh put in place for the current user.
#
#   uninstall.sh [--purge]
#
#   --purge   also delete settings, history and logs (by default they stay, so a reinstall
#             keeps the history). The login in the OS keyring is removed by "Log out" in the app.
set -euo pipefail

APP_ID=tray-notifier
die() { printf 'uninstall: %s\n' "$*" >&2; exit 1; }
say() { printf 'uninstall: %s\n' "$*"; }

[ -n "${HOME:-}" ] && [ -d "$HOME" ] || die "HOME is not set to a folder"
purge=0
case "${1:-}" in
  --purge) purge=1 ;;
  "") ;;
  -h|--help) sed -n '2,7p' "${BASH_SOURCE[0]}"; exit 0 ;;
  *) die "unknown option $1 (see --help)" ;;
esac

data_home=${XDG_DATA_HOME:-$HOME/.local/share}
config_home=${XDG_CONFIG_HOME:-$HOME/.config}
state_home=${XDG_STATE_HOME:-$HOME/.local/state}
opt_dir=$HOME/.local/opt/$APP_ID
link=$HOME/.local/bin/$APP_ID

# the link only when it is ours
if [ -L "$link" ] && [ "$(readlink "$link")" = "$opt_dir/$APP_ID" ]; then rm -f "$link"; fi
rm -rf "$opt_dir"
rm -f "$data_home/applications/$APP_ID.desktop" "$config_home/autostart/$APP_ID.desktop"
rm -f "$data_home"/icons/hicolor/*/apps/"$APP_ID".png "$data_home/icons/hicolor/scalable/apps/$APP_ID.svg"

command -v update-desktop-database >/dev/null && update-desktop-database -q "$data_home/applications" || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$data_home/icons/hicolor" 2>/dev/null || true

if [ "$purge" = 1 ]; then
  rm -rf "$config_home/$APP_ID" "$data_home/$APP_ID" "$state_home/$APP_ID"
  say "removed $APP_ID with its settings, history and logs"
else
  say "removed $APP_ID; settings, history and logs kept in $config_home/$APP_ID, $data_home/$APP_ID, $state_home/$APP_ID (use --purge to delete them)"
fi
