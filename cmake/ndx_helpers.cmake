# Declarative helpers so that every CMakeLists.txt below the root lists only names, sources and
# dependencies.
#
#   ndx_cc_library(NAME common SRCS a.cc HDRS a.h DEPS absl::status)
#       -> STATIC library ndx_common, alias ndx::common; its include root is the repository root,
#          so code includes "libs/common/a.h".
#   ndx_cc_test(NAME common_test SRCS a_test.cc DEPS ndx::common LABELS unit)
#       -> executable, linked with the test main (tests/testing/test_main.cc: GoogleTest's main and
#          the ndx process settings) and the test-support library, registered with ctest
#          as ONE test (the whole binary), with the given labels. One ctest test per binary, not
#          per gtest case: test binaries start their real servers (redis-server, PostgreSQL) once
#          per binary in SetUpTestSuite, and per-case processes would start them once per case.
#   ndx_cc_binary(NAME ndx-queue SRC main.cc DEPS ndx::queue_service)
#       -> executable from one main.cc.
#
# In the fuzz build (NDX_FUZZ=ON) ndx_cc_test and ndx_cc_binary declare nothing: that build has
# only the libraries and the fuzz targets of tests/fuzz.

function(ndx_cc_library)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;HDRS;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(ndx_${ARG_NAME} STATIC ${ARG_SRCS} ${ARG_HDRS})
  add_library(ndx::${ARG_NAME} ALIAS ndx_${ARG_NAME})
  target_include_directories(ndx_${ARG_NAME} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(ndx_${ARG_NAME} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
endfunction()

# In the TSan build every executable carries tests/sanitizers/tsan_annotations.cc, which
# makes the synchronization of the uninstrumented abseil (Mutex / CondVar / Condition /
# Notification) and gRPC (a batch's start and its completion) visible to TSan; -rdynamic exports
# those definitions so that they also interpose the calls made inside libabsl and gRPC.
function(ndx_sanitize_executable name)
  if(NDX_SANITIZE STREQUAL "thread")
    target_sources(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests/sanitizers/tsan_annotations.cc)
    target_link_libraries(${name} PRIVATE ${CMAKE_DL_LIBS})
    target_link_options(${name} PRIVATE -rdynamic)
  endif()
endfunction()

# Links jemalloc into a service binary (CMakeLists.txt NDX_JEMALLOC; a no-op in sanitizer and fuzz
# builds). Nothing calls jemalloc by name: its malloc/free replace glibc's for the whole process
# (gRPC, protobuf, nlohmann, SpiderMonkey too) because libjemalloc.so.2 comes before libc.so.6 in
# the binary's DT_NEEDED list; --no-as-needed keeps that entry under any link order (with
# --as-needed it would be dropped if another library had resolved malloc first). Valgrind's
# memcheck needs --soname-synonyms=somalloc=libjemalloc.so* to track these allocations
# (callgrind needs nothing).
function(ndx_use_jemalloc name)
  if(NDX_USE_JEMALLOC)
    # One linker argument, so that CMake neither reorders nor deduplicates its parts; it also
    # puts the library ahead of every other one on the command line and in DT_NEEDED.
    target_link_options(${name} PRIVATE
      "LINKER:--push-state,--no-as-needed,${JEMALLOC_LINK_LIBRARIES},--pop-state")
  endif()
endfunction()

function(ndx_cc_test)
  if(NDX_FUZZ)
    return()
  endif()
  cmake_parse_arguments(ARG "" "NAME;TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  if(NDX_SANITIZE)
    math(EXPR ARG_TIMEOUT "${ARG_TIMEOUT} * 3")  # sanitized code runs 2-10x slower
  endif()
  add_executable(${ARG_NAME} ${ARG_SRCS})
  ndx_sanitize_executable(${ARG_NAME})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} ndx::testing ndx::test_main)
  if(NDX_SANITIZE)
    # The wrapper sends every process's sanitizer report (the test's and its children's) to files
    # and fails the test if any was written: tests/sanitizers/run_sanitized.sh.
    add_test(NAME ${ARG_NAME}
      COMMAND ${PROJECT_SOURCE_DIR}/tests/sanitizers/run_sanitized.sh ${NDX_SANITIZE}
              $<TARGET_FILE:${ARG_NAME}> --gtest_color=no)
  else()
    add_test(NAME ${ARG_NAME} COMMAND ${ARG_NAME} --gtest_color=no)
  endif()
  set_tests_properties(${ARG_NAME} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT})
endfunction()

function(ndx_cc_binary)
  if(NDX_FUZZ)
    return()
  endif()
  cmake_parse_arguments(ARG "" "NAME;SRC" "DEPS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRC})
  ndx_sanitize_executable(${ARG_NAME})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS})
endfunction()
