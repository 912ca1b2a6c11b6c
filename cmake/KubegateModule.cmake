# kubegate_module(NAME <folder> SOURCES <.cc> [DEPS <modules>] [LIBS <external targets>]
#                 [TESTS <_test.cc>] [TEST_DEPS <modules or targets>])
#
# One static library per folder of src/ (kg_<folder>), linking the modules
# it declares in DEPS and nothing else of kubegate's; its tests beside it
# build into <folder>_tests with the ctest label <folder>. The declared
# dependencies are checked against every #include of the folder by the
# module_includes test (cmake/check_includes.cmake).
function(kubegate_module)
  cmake_parse_arguments(M "" "NAME" "SOURCES;DEPS;LIBS;TESTS;TEST_DEPS" ${ARGN})
  set(target kg_${M_NAME})
  add_library(${target} STATIC ${M_SOURCES})
  target_include_directories(${target} PUBLIC ${CMAKE_SOURCE_DIR}/src)
  set(deps)
  foreach(d ${M_DEPS})
    list(APPEND deps kg_${d})
  endforeach()
  target_link_libraries(${target} PUBLIC ${deps} ${M_LIBS})
  string(REPLACE ";" "," dep_list "${M_DEPS}")
  string(REPLACE ";" "," test_dep_list "${M_TEST_DEPS}")
  set_property(GLOBAL APPEND PROPERTY KUBEGATE_MODULES "${M_NAME}=${dep_list}|${test_dep_list}")
  if(KUBEGATE_TESTS AND M_TESTS)
    set(test_deps)
    foreach(d ${M_TEST_DEPS})
      if(TARGET kg_${d})
        list(APPEND test_deps kg_${d})
      else()
        list(APPEND test_deps ${d})
      endif()
    endforeach()
    add_executable(${M_NAME}_tests ${M_TESTS})
    target_link_libraries(${M_NAME}_tests PRIVATE ${target} ${test_deps} GTest::gtest_main GTest::gmock)
    target_compile_definitions(${M_NAME}_tests PRIVATE KUBEGATE_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
    # Listed when ctest runs, not at build time (no test binary runs during a build).
    gtest_discover_tests(${M_NAME}_tests DISCOVERY_MODE PRE_TEST PROPERTIES LABELS ${M_NAME})
  endif()
endfunction()
