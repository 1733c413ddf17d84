// ncursesw (wide-character curses, MIT-style licence) for SpecBench's dashboard. Swift 6 refuses
// curses' mutable globals (stdscr, LINES, COLS, COLORS) and imports no function-like macros, so
// they are reached through these functions. The dashboard calls curses from one thread only.
#ifndef SPECBENCH_CNCURSES_SHIM_H
#define SPECBENCH_CNCURSES_SHIM_H

#ifndef _XOPEN_SOURCE_EXTENDED
#define _XOPEN_SOURCE_EXTENDED 1
#endif
#include <langinfo.h>
#include <locale.h>
#include <string.h>
#include <stdlib.h>
#include <wchar.h>
#include <ncursesw/curses.h>
#include <term.h>
#include <unistd.h>

static inline WINDOW *specbench_stdscr(void) { return stdscr; }
static inline int specbench_lines(void) { return LINES; }
static inline int specbench_cols(void) { return COLS; }
static inline int specbench_colors(void) { return COLORS; }
static inline int specbench_color_pairs(void) { return COLOR_PAIRS; }
static inline int specbench_key_resize(void) { return KEY_RESIZE; }
static inline int specbench_key_code_yes(void) { return KEY_CODE_YES; }
static inline int specbench_err(void) { return ERR; }

/// Attribute bits, by name.
static inline attr_t specbench_a_normal(void) { return A_NORMAL; }
static inline attr_t specbench_a_bold(void) { return A_BOLD; }
static inline attr_t specbench_a_dim(void) { return A_DIM; }
static inline attr_t specbench_a_underline(void) { return A_UNDERLINE; }
static inline attr_t specbench_a_reverse(void) { return A_REVERSE; }

/// Whether the terminal description says it takes 24-bit colours directly.
static inline int specbench_has_rgb(void) {
  int flag = tigetflag("RGB");
  return flag > 0;
}

/// Starts curses on standard input and output, without exiting the program when it cannot
/// (as initscr does). 0 on success; -1 when the terminal type ($TERM) is unknown; -2 when the
/// terminal cannot move its cursor (TERM=dumb, a printing terminal), so a full-screen view
/// cannot be drawn; -3 when newterm fails.
static inline int specbench_start_screen(void) {
  int status = 0;
  if (setupterm(NULL, STDOUT_FILENO, &status) != OK) return -1;
  const char *cup = tigetstr("cup");
  const char *clear = tigetstr("clear");
  int addressable = cup != NULL && cup != (char *)-1 && clear != NULL && clear != (char *)-1;
  del_curterm(cur_term);
  if (!addressable) return -2;
  SCREEN *screen = newterm(NULL, stdout, stdin);
  if (screen == NULL) return -3;
  set_term(screen);
  return 0;
}

/// Sets the locale from the environment (before initscr, so wide characters draw); returns
/// whether the character set is UTF-8.
static inline int specbench_setlocale_utf8(void) {
  if (setlocale(LC_ALL, "") == NULL) return 0;
  const char *codeset = nl_langinfo(CODESET);
  return codeset != NULL && strcmp(codeset, "UTF-8") == 0;
}

/// Puts one wide character at (y, x) with attributes and a colour pair (any pair number:
/// the pair goes through setcchar's extension argument, so pairs above 255 work).
static inline int specbench_put(int y, int x, wchar_t ch, attr_t attributes, int pair) {
  cchar_t cell;
  wchar_t text[2] = {ch, 0};
  int extendedPair = pair;
  setcchar(&cell, text, attributes, (short)(pair < 256 ? pair : 0), &extendedPair);
  return mvadd_wch(y, x, &cell);
}

/// The next key: its code in *key, and whether it is a function key (KEY_CODE_YES), a
/// character (OK) or nothing within the timeout (ERR).
static inline int specbench_get_key(int *key) {
  wint_t value = 0;
  int result = get_wch(&value);
  *key = (int)value;
  return result;
}

#endif
