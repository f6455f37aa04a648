/* db_iter.c - placeholder until the module lands. */
typedef int sett_placeholder_db_iter;
