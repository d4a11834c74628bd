#!/usr/bin/env bash
# Install the Tray Notifier Linux build for the current user (no root, nothing outside $HOME).
#
#   install.sh [--from DIR] [--autostart] [--without-chinese-font]
#
#   --from DIR    the onedir build (the folder holding the tray-notifier binary). Default: the
#                 tray-notifier/ folder next to this script (release archive), else dist/tray-notifier
#                 of the checkout this script is in.
#   --autostart   also start it at login (the same entry as Settings > Start at login).
#   --without-chinese-font   install even when no font shows Chinese (by default that stops
#                 the install: every Chinese announcement would be a row of boxes)
#
# Installs to ~/.local/opt/tray-notifier, links ~/.local/bin/tray-notifier, adds the menu entry
# (~/.local/share/applications) and the icon (~/.local/share/icons/hicolor). Running it again
# upgrades in place. Remove with uninstall.sh. Honours XDG_DATA_HOME and XDG_CONFIG_HOME.
set -euo pipefail

APP_ID=tray-notifier
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() { printf 'install: %s\n' "$*" >&2; exit 1; }
say() { printf 'install: %s\n' "$*"; }

[ -n "${HOME:-}" ] && [ -d "$HOME" ] || die "HOME is not set to a folder"
src=""
autostart=0
need_cjk=1
while [ $# -gt 0 ]; do
  case "$1" in
    --from) [ $# -ge 2 ] || die "--from needs a folder"; src=$2; shift 2 ;;
    --autostart) autostart=1; shift ;;
    --without-chinese-font) need_cjk=0; shift ;;
    -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
if [ -z "$src" ]; then
  for candidate in "$here/$APP_ID" "$here/../../dist/$APP_ID"; do
    if [ -x "$candidate/$APP_ID" ]; then src=$candidate; break; fi
  done
  [ -n "$src" ] || die "no build found next to this script or in dist/: build it (scripts/dev build) or pass --from DIR"
fi
src=$(cd "$src" && pwd)
[ -x "$src/$APP_ID" ] || die "$src/$APP_ID is not an executable: pass the onedir build folder"
desktop_template="$here/$APP_ID.desktop"
[ -f "$desktop_template" ] || die "$desktop_template is missing: keep the .desktop file next to this script"

# Check that it starts here before touching anything (missing system libraries show now).
if ! version=$(QT_QPA_PLATFORM=offscreen "$src/$APP_ID" --version 2>&1); then
  die "the program does not start on this system: $version
Debian/Ubuntu need: sudo apt-get install libgl1 libegl1 fontconfig-config (glibc 2.34 or newer)"
fi

# Chinese text needs a CJK font; the runtime libraries bring none (the self-test says so too).
no_cjk="no font on this computer shows Chinese: Chinese announcements would appear as boxes.
Install one: sudo apt-get install fonts-noto-cjk (Debian, Ubuntu), sudo dnf install google-noto-sans-cjk-fonts (Fedora)"
if ! command -v fc-list >/dev/null; then
  say "warning: fc-list (fontconfig) is missing: could not check for a font that shows Chinese"
elif [ -z "$(fc-list :lang=zh family 2>/dev/null | head -n 1)" ]; then
  [ "$need_cjk" = 0 ] || die "$no_cjk; or install anyway with --without-chinese-font"
  say "warning: $no_cjk"
fi

data_home=${XDG_DATA_HOME:-$HOME/.local/share}
config_home=${XDG_CONFIG_HOME:-$HOME/.config}
opt_dir=$HOME/.local/opt/$APP_ID
bin_dir=$HOME/.local/bin
exe=$opt_dir/$APP_ID

# Program: copy next to the old one, then swap, so a failed copy leaves the old install working.
mkdir -p "$HOME/.local/opt" "$bin_dir"
rm -rf "$opt_dir.new" "$opt_dir.old"
cp -a "$src" "$opt_dir.new"
if [ -e "$opt_dir" ]; then mv "$opt_dir" "$opt_dir.old"; fi
mv "$opt_dir.new" "$opt_dir"
rm -rf "$opt_dir.old"
ln -sfn "$exe" "$bin_dir/$APP_ID"

# Icons: the app icon's PNG sizes and SVG, from the bundled resources.
icons_src=""
for candidate in "$opt_dir/_internal/resources/icons" "$opt_dir/resources/icons"; do
  if [ -d "$candidate" ]; then icons_src=$candidate; break; fi
done
hicolor=$data_home/icons/hicolor
if [ -n "$icons_src" ]; then
  for png in "$icons_src/$APP_ID"-*.png; do
    [ -e "$png" ] || continue
    size=${png##*-}; size=${size%.png}
    case "$size" in *[!0-9]*|'') continue ;; esac
    install -D -m 644 "$png" "$hicolor/${size}x${size}/apps/$APP_ID.png"
  done
  if [ -f "$icons_src/$APP_ID.svg" ]; then
    install -D -m 644 "$icons_src/$APP_ID.svg" "$hicolor/scalable/apps/$APP_ID.svg"
  fi
else
  say "warning: no icons in the build; the menu entry will show a generic icon"
fi

# Menu entry, pointing at the installed binary (~/.local/bin may not be on the session's PATH).
desktop_file=$data_home/applications/$APP_ID.desktop
mkdir -p "$data_home/applications"
sed "s|^Exec=.*|Exec=\"$exe\"|" "$desktop_template" > "$desktop_file.tmp"
mv "$desktop_file.tmp" "$desktop_file"
if [ "$autostart" = 1 ]; then
  mkdir -p "$config_home/autostart"
  cp "$desktop_file" "$config_home/autostart/$APP_ID.desktop"
fi

command -v update-desktop-database >/dev/null && update-desktop-database -q "$data_home/applications" || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$hicolor" 2>/dev/null || true

say "installed $version in $opt_dir"
say "menu entry: $desktop_file"
[ "$autostart" = 1 ] && say "starts at login: $config_home/autostart/$APP_ID.desktop"
case ":$PATH:" in
  *":$bin_dir:"*) say "run it with: $APP_ID" ;;
  *) say "run it with: $exe (add $bin_dir to PATH to type just $APP_ID)" ;;
esac
