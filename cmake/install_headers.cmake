# Run by `cmake --install` (see install.cmake): installs each layer's headers under
# include/gradpath/<layer>/ with their includes of one another made relative
# ("autodiff/tape.hpp" -> "../autodiff/tape.hpp"), so an installed header finds its
# neighbours beside itself and never a user's own autodiff/, ops/, graph/ or check/
# (Note [Header layout] in include/gradpath/gradpath.hpp). In the source tree the
# headers keep the short spelling, resolved through the project root.
# In: GRADPATH_SOURCE_DIR, GRADPATH_STAGE_DIR (scratch), GRADPATH_INCLUDE_DIR (relative
# to the prefix), GRADPATH_MODULES.
file(REMOVE_RECURSE ${GRADPATH_STAGE_DIR})
list(JOIN GRADPATH_MODULES "|" layers)
foreach(module ${GRADPATH_MODULES})
  file(GLOB headers RELATIVE ${GRADPATH_SOURCE_DIR}/${module} ${GRADPATH_SOURCE_DIR}/${module}/*.hpp)
  foreach(header ${headers})
    file(READ ${GRADPATH_SOURCE_DIR}/${module}/${header} text)
    string(REGEX REPLACE "#include \"(${layers})/" "#include \"../\\1/" text "${text}")
    file(WRITE ${GRADPATH_STAGE_DIR}/${module}/${header} "${text}")
  endforeach()
endforeach()
# file(INSTALL) honours DESTDIR and records the files in install_manifest.txt.
file(INSTALL DESTINATION ${CMAKE_INSTALL_PREFIX}/${GRADPATH_INCLUDE_DIR}/gradpath TYPE DIRECTORY
     FILES ${GRADPATH_STAGE_DIR}/ FILES_MATCHING PATTERN "*.hpp")
