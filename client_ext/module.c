/* Placeholder until the extension lands: an importable empty module. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static struct PyModuleDef_Slot slots[] = {{0, NULL}};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "_tracepatch", NULL, 0, NULL, slots, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__tracepatch(void);
PyMODINIT_FUNC PyInit__tracepatch(void)
{
    return PyModuleDef_Init(&moddef);
}
