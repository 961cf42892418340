# Every module folder, in dependency order (a folder may only depend on folders above it).
# A folder without a CMakeLists.txt yet is skipped.
set(MAST_MODULE_DIRS
  src/base
  src/stats
  src/http
  src/http/http1
  src/http/http2
  src/net
  src/proxy/config
  src/proxy/access_log
  src/proxy/router
  src/proxy/upstream
  src/proxy/filters
  src/proxy/admin
  src/proxy/xds
  src/proxy/server
  src/control/config
  src/control/model
  src/control/translate
  src/control/xds
  src/control/ca
  src/control/server
  src/cli
  src/agent
  cmd/mast-proxy
  cmd/mastd
  cmd/mastctl
  cmd/mast-agent
  apps/bookinfo
  test/integration
  bench
  fuzz)
# Folders to leave out of this build tree (e.g. one engineer's build while another's module is
# half-written in the same working tree).
set(MAST_EXCLUDE_DIRS "" CACHE STRING "Module folders to skip")
foreach(dir IN LISTS MAST_MODULE_DIRS)
  if(dir IN_LIST MAST_EXCLUDE_DIRS)
    continue()
  endif()
  if(EXISTS ${PROJECT_SOURCE_DIR}/${dir}/CMakeLists.txt)
    add_subdirectory(${dir})
  endif()
endforeach()
