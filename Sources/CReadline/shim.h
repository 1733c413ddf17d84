// GNU readline for SpecBench's REPL. Swift 6 refuses readline's mutable globals ("not
// concurrency-safe"), so they are read and set through these functions. The REPL uses them
// from its one thread only. GNU readline is GPL-3.0: only the REPL target and the executable
// link it; the library modules do not.
#ifndef SPECBENCH_CREADLINE_SHIM_H
#define SPECBENCH_CREADLINE_SHIM_H

#include <stdio.h>
#include <stdlib.h>
#include <readline/readline.h>
#include <readline/history.h>

typedef char **(*specbench_completion_fn)(const char *text, int start, int end);

static inline void specbench_rl_set_completion(specbench_completion_fn f) { rl_attempted_completion_function = f; }
static inline void specbench_rl_set_completion_over(int over) { rl_attempted_completion_over = over; }
static inline void specbench_rl_set_append_character(int c) { rl_completion_append_character = c; }
static inline void specbench_rl_set_catch_signals(int on) { rl_catch_signals = on; rl_catch_sigwinch = on; }
/// Whether readline exports LINES and COLUMNS: off, or curses would take those frozen values
/// for the terminal's size and never follow a resize.
static inline void specbench_rl_set_change_environment(int on) { rl_change_environment = on; }
static inline const char *specbench_rl_line_buffer(void) { return rl_line_buffer; }
static inline void specbench_rl_set_readline_name(const char *name) { rl_readline_name = name; }
static inline int specbench_history_length(void) { return history_length; }
static inline void specbench_rl_set_instream(FILE *in) { rl_instream = in; }
static inline void specbench_rl_set_outstream(FILE *out) { rl_outstream = out; }
static inline FILE *specbench_stdin(void) { return stdin; }
static inline FILE *specbench_stdout(void) { return stdout; }

#endif
