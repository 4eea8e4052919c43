/* threads=True: following the threads a recorded thread starts. */
#ifndef TP_THREADS_H
#define TP_THREADS_H

#include "ext.h"

/** threads=True: the thread about to start (a threading.Thread, borrowed) is
 *  followed by the sessions in scope that asked for it. */
void tp_threads_start(tp_tls *tls, PyObject *thread);

#endif
