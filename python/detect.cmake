# Included by the top-level CMakeLists.txt before the MOESCOPE_BUILD_PYTHON option: finds the
# Python the module is built for and pybind11, and sets MOESCOPE_PYTHON_AVAILABLE.
#
# The module is built for Debian's /usr/bin/python3 (the one with numpy and torch), not for
# whatever `python3` comes first on PATH: pass -DPython3_EXECUTABLE=... to choose another.
if(NOT DEFINED Python3_EXECUTABLE AND EXISTS /usr/bin/python3)
  set(Python3_EXECUTABLE /usr/bin/python3 CACHE FILEPATH "Python the moescope module is built for")
endif()
# Python3 first, so pybind11's config uses FindPython3 (and this interpreter) instead of its
# own search.
find_package(Python3 COMPONENTS Interpreter Development.Module QUIET)
set(MOESCOPE_PYTHON_AVAILABLE OFF)
if(Python3_FOUND)
  find_package(pybind11 CONFIG QUIET)
  if(pybind11_FOUND)
    set(MOESCOPE_PYTHON_AVAILABLE ON)
  endif()
endif()
