# One example host end to end (a ctest of cpp/examples/CMakeLists.txt):
#
#   cmake -DHOST=landbc_host_f -DINPUTS=<host-inputs folder> -DOUT=<scratch> -P run_host.cmake
#
# 1. the full run: OUT/full.txt has nsteps step lines and "done <nsteps> steps";
# 2. it wrote OUT/restart_<restart_step>.safetensors;
# 3. the run resumed from that restart prints exactly the full run's lines after
#    step restart_step (OUT/resumed.txt).
foreach(v HOST INPUTS OUT)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "run_host.cmake: -D${v}=... is required")
  endif()
endforeach()

file(READ "${INPUTS}/host.nml" nml)
string(REGEX MATCH "nsteps *= *([0-9]+)" _ "${nml}")
set(nsteps "${CMAKE_MATCH_1}")
string(REGEX MATCH "restart_step *= *([0-9]+)" _ "${nml}")
set(restart_step "${CMAKE_MATCH_1}")
if(nsteps STREQUAL "" OR restart_step STREQUAL "")
  message(FATAL_ERROR "${INPUTS}/host.nml: no nsteps / restart_step")
endif()

file(REMOVE_RECURSE "${OUT}")
file(MAKE_DIRECTORY "${OUT}")

function(run_host output)
  execute_process(COMMAND "${HOST}" ${ARGN}
    OUTPUT_FILE "${OUT}/${output}" ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${HOST} ${ARGN}: exit status ${rc}\n${err}")
  endif()
endfunction()

# 1. the full run
run_host(full.txt "${INPUTS}" "${OUT}")
file(STRINGS "${OUT}/full.txt" full)
list(LENGTH full n)
math(EXPR want "${nsteps} + 1")
list(GET full -1 last)
if(NOT n EQUAL want OR NOT last STREQUAL "done ${nsteps} steps")
  message(FATAL_ERROR "${HOST}: expected ${nsteps} step lines and 'done ${nsteps} steps', "
                      "found ${n} lines ending with '${last}'")
endif()
message(STATUS "${HOST}: ${nsteps} steps")

if(restart_step GREATER 0)
  # 2. the restart
  math(EXPR padded "1000 + ${restart_step}")
  string(SUBSTRING "${padded}" 1 3 tag)
  set(restart "${OUT}/restart_${tag}.safetensors")
  if(NOT EXISTS "${restart}")
    message(FATAL_ERROR "${HOST}: no restart ${restart} after step ${restart_step}")
  endif()
  # 3. resumed from it
  run_host(resumed.txt "${INPUTS}" "${OUT}" "${restart}")
  file(STRINGS "${OUT}/resumed.txt" resumed)
  list(SUBLIST full ${restart_step} -1 tail)
  if(NOT "${tail}" STREQUAL "${resumed}")
    string(REPLACE ";" "\n" tail "${tail}")
    string(REPLACE ";" "\n" resumed "${resumed}")
    message(FATAL_ERROR "${HOST}: resumed run differs from the full run after step "
                        "${restart_step}\nfull:\n${tail}\nresumed:\n${resumed}")
  endif()
  message(STATUS "${HOST}: resumed from ${restart} = the full run")
endif()
