/*
 * mapguard.h - reads of memory-mapped files that survive SIGBUS.
 *
 * Touching a page of a file mapping raises SIGBUS when the page cannot be
 * read (a media error) or lies past the file's end (the file was cut short
 * after it was mapped).  The default action kills the process.  map_guarded
 * runs a function so that such a SIGBUS in the calling thread, anywhere in
 * that function, makes map_guarded return MAPGUARD_FAULT instead: the
 * signal handler jumps back (siglongjmp) to where map_guarded started.
 *
 * The jump abandons the function where it stood, so it must be written
 * for that: at every read of mapped memory no lock is held and no
 * allocation or other change of shared state is half done (copying mapped
 * bytes into a buffer reserved beforehand is fine).  The caller decides
 * what the interrupted operation left behind (typically: an error).
 *
 * The handler is process-wide and installed once, by map_guard_init.  A
 * SIGBUS outside map_guarded goes to the handler that was installed before
 * (or takes the default action, killing the process, as without us).  An
 * application that installs its own SIGBUS handler later replaces ours,
 * and mapped reads then fault as if unguarded.
 */
#ifndef SETT_MAPGUARD_H
#define SETT_MAPGUARD_H

#define MAPGUARD_FAULT (-0x7ffe)

/* Installs the handler (once per process); 0, or <0 if it cannot. */
int map_guard_init(void);
/* fn(arg)'s result, or MAPGUARD_FAULT if a SIGBUS interrupted it. */
int map_guarded(int (*fn)(void *arg), void *arg);

#endif
