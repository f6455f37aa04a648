/* db_impl.h - internals of sett_db (see db.c). */
#ifndef SETT_DB_IMPL_H
#define SETT_DB_IMPL_H
#endif
